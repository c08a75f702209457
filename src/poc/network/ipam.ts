/**
 * Address management: `$POC_ROOT/network/state.json` records the default network's bridge, its subnet and, per
 * container, its address, host-side veth name, hostname and published ports; `networks.json` the same for
 * each user network, with its name, id and settings. Changed only under the "network" lock. The pure
 * functions take a state and return a new one; `updateNetworkSet` is the one place that reads and writes them.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PocError } from '../errors.js';
import { pocPaths, readJson, withLock, writeJsonAtomic, type RootOptions } from '../poc-root.js';
import { intToIp, ip6At, ipToInt, inSubnet, parseSubnet, parseSubnet6 } from './address.js';
import { formatPublish, type PortMapping } from './publish.js';

export const DEFAULT_BRIDGE = 'pocbr0';
export const DEFAULT_SUBNET = '10.89.0.0/16';

export interface ContainerNetwork {
  containerId: string;
  ip: string;
  hostname: string;
  /** Host end of the veth pair; also names the container's nftables chain. */
  vethHost: string;
  publish: PortMapping[];
  /** The interface in the container (eth0 when absent: the default network before user networks). */
  ifname?: string;
  /** On a dual-stack network: the address at the same offset in the IPv6 subnet. */
  ip6?: string;
  /** The names the network's DNS answers for it: its name, short id and --network-alias values. */
  names?: string[];
  /** Wired (its veth exists): the network's DNS server runs while one of its containers is. */
  up?: boolean;
}

export interface NetworkState {
  version: 1;
  bridge: string;
  subnet: string;
  gateway: string;
  /** Allocation goes on after the last address handed out, so a freed address is not reused at once. */
  lastAllocated?: string;
  containers: Record<string, ContainerNetwork>;
  // User networks (`poc network create`) only; the default network has none of these.
  name?: string;
  id?: string;
  created?: string;
  /** No way out: no default route, no masquerade, nothing forwarded off the bridge. */
  internal?: boolean;
  subnet6?: string;
  gateway6?: string;
  labels?: Record<string, string>;
}

export interface BridgeConfig {
  bridge?: string;
  /** Default 10.89.0.0/16; the gateway (the bridge's address) is the first host address. */
  subnet?: string;
}

export function emptyNetworkState(cfg: BridgeConfig = {}): NetworkState {
  const subnet = parseSubnet(cfg.subnet ?? DEFAULT_SUBNET);
  const bridge = cfg.bridge ?? DEFAULT_BRIDGE;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw new PocError(`invalid bridge name ${JSON.stringify(bridge)}: at most 15 letters, digits and _.-`);
  return { version: 1, bridge, subnet: subnet.cidr, gateway: intToIp(subnet.first), containers: {} };
}

/**
 * Applies a requested bridge configuration to a state: free to change while no container is attached,
 * an error (naming both values) otherwise.
 */
export function configureNetwork(state: NetworkState, cfg: BridgeConfig): NetworkState {
  const want = emptyNetworkState({ bridge: cfg.bridge ?? state.bridge, subnet: cfg.subnet ?? state.subnet });
  if (want.bridge === state.bridge && want.subnet === state.subnet) return state;
  const n = Object.keys(state.containers).length;
  if (n > 0) {
    throw new PocError(
      `cannot change the network from ${state.bridge} ${state.subnet} to ${want.bridge} ${want.subnet} while ${n} container${n > 1 ? 's are' : ' is'} attached`,
    );
  }
  return { ...want };
}

/** 15 characters at most (IFNAMSIZ); derived from the id so that teardown can find it even without state. */
export function vethName(containerId: string): string {
  return `poc${createHash('sha256').update(containerId).digest('hex').slice(0, 12)}`;
}

/** nftables chain of a container's published ports. */
export function containerChain(containerId: string): string {
  return `ctr_${vethName(containerId).slice(3)}`;
}

export interface AllocationRequest {
  containerId: string;
  hostname: string;
  publish?: PortMapping[];
  /** A specific address (must be free and in the subnet). */
  ip?: string;
  ifname?: string;
  names?: string[];
}

/** Pure: gives the container an address (the same one again if it has one) and records its ports. */
export function allocate(state: NetworkState, req: AllocationRequest): { state: NetworkState; entry: ContainerNetwork } {
  const publish = req.publish ?? [];
  const seen = new Set<string>();
  for (const p of publish) {
    const key = `${p.hostPort}/${p.protocol}`;
    if (seen.has(key)) throw new PocError(`port ${key} is published twice`);
    seen.add(key);
    for (const other of Object.values(state.containers)) {
      if (other.containerId === req.containerId) continue;
      const clash = other.publish.find((q) => q.hostPort === p.hostPort && q.protocol === p.protocol);
      if (clash) {
        throw new PocError(`port ${key} is already published by container ${other.hostname || other.containerId} (${formatPublish(clash)})`);
      }
    }
  }
  const existing = state.containers[req.containerId];
  const subnet = parseSubnet(state.subnet);
  const used = new Set(Object.values(state.containers).filter((c) => c.containerId !== req.containerId).map((c) => c.ip));
  used.add(state.gateway);
  let ip: string;
  if (req.ip) {
    if (!inSubnet(subnet, req.ip) || ipToInt(req.ip) < subnet.first || ipToInt(req.ip) > subnet.last) {
      throw new PocError(`address ${req.ip} is not a host address of ${state.subnet}`);
    }
    if (used.has(req.ip)) throw new PocError(`address ${req.ip} is already in use`);
    ip = req.ip;
  } else if (existing) {
    ip = existing.ip;
  } else {
    const size = subnet.last - subnet.first + 1;
    const start = state.lastAllocated && inSubnet(subnet, state.lastAllocated) ? ipToInt(state.lastAllocated) + 1 : subnet.first;
    let found: string | undefined;
    for (let i = 0; i < size; i++) {
      const n = subnet.first + ((start - subnet.first + i) % size);
      const candidate = intToIp(n);
      if (!used.has(candidate)) {
        found = candidate;
        break;
      }
    }
    if (!found) throw new PocError(`no free address left in ${state.subnet}`);
    ip = found;
  }
  const entry: ContainerNetwork = {
    containerId: req.containerId,
    ip,
    hostname: req.hostname,
    // The default network's veth keeps its old name, so teardown finds the veths of containers made before.
    vethHost: state.name ? vethName(`${req.containerId}/${state.name}`) : vethName(req.containerId),
    publish,
  };
  const ifname = req.ifname ?? existing?.ifname;
  if (ifname) entry.ifname = ifname;
  if (state.subnet6) entry.ip6 = ip6At(parseSubnet6(state.subnet6), ipToInt(ip) - subnet.network);
  const names = req.names ?? existing?.names;
  if (names) entry.names = names;
  if (existing?.up) entry.up = true;
  return {
    state: { ...state, lastAllocated: existing && !req.ip ? state.lastAllocated : ip, containers: { ...state.containers, [req.containerId]: entry } },
    entry,
  };
}

/** Pure: forgets a container (no error if unknown). */
export function release(state: NetworkState, containerId: string): NetworkState {
  if (!(containerId in state.containers)) return state;
  const containers = { ...state.containers };
  delete containers[containerId];
  return { ...state, containers };
}

export function networkStatePath(opts: RootOptions = {}): string {
  return join(pocPaths(opts).network, 'state.json');
}

export function readNetworkState(opts: RootOptions = {}): NetworkState {
  return readJson<NetworkState>(networkStatePath(opts), emptyNetworkState());
}

/** The default network (state.json, as before user networks) and the user networks by name (networks.json). */
export interface NetworkSet {
  default: NetworkState;
  user: Record<string, NetworkState>;
}

export function userNetworksPath(opts: RootOptions = {}): string {
  return join(pocPaths(opts).network, 'networks.json');
}

export function readNetworkSet(opts: RootOptions = {}): NetworkSet {
  const user = readJson<{ version: 1; networks: Record<string, NetworkState> }>(userNetworksPath(opts), { version: 1, networks: {} }).networks;
  return { default: readNetworkState(opts), user };
}

/** Every network of the set, the default first. */
export function allNetworks(set: NetworkSet): NetworkState[] {
  return [set.default, ...Object.values(set.user)];
}

/**
 * Reads, changes and writes every network's state under the one network lock (so creating or removing a
 * network and wiring a container into one never interleave); `fn` may do system work under it.
 */
export async function updateNetworkSet<T>(
  opts: RootOptions,
  fn: (set: NetworkSet) => Promise<{ set?: NetworkSet; result: T }> | { set?: NetworkSet; result: T },
): Promise<T> {
  return withLock(
    'network',
    async () => {
      const set = readNetworkSet(opts);
      const { set: next, result } = await fn(set);
      if (next) {
        mkdirSync(pocPaths(opts).network, { recursive: true, mode: 0o700 });
        if (next.default !== set.default) writeJsonAtomic(networkStatePath(opts), next.default);
        if (next.user !== set.user) writeJsonAtomic(userNetworksPath(opts), { version: 1, networks: next.user });
      }
      return result;
    },
    opts,
  );
}
