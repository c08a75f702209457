/**
 * Address management: `$POC_ROOT/network/state.json` records the bridge, its subnet and, per container, its
 * address, host-side veth name, hostname and published ports. Changed only under the "network" lock. The pure
 * functions take a state and return a new one; `updateNetworkState` is the one place that reads and writes it.
 */
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PocError } from '../../errors.js';
import { pocPaths, readJson, withLock, writeJsonAtomic, type RootOptions } from '../store.js';
import { intToIp, ipToInt, inSubnet, parseSubnet } from './address.js';
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
}

export interface NetworkState {
  version: 1;
  bridge: string;
  subnet: string;
  gateway: string;
  /** Allocation goes on after the last address handed out, so a freed address is not reused at once. */
  lastAllocated?: string;
  containers: Record<string, ContainerNetwork>;
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
  const entry: ContainerNetwork = { containerId: req.containerId, ip, hostname: req.hostname, vethHost: vethName(req.containerId), publish };
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

/** Reads, changes and writes the state under the network lock; `fn` may also do system work under it. */
export async function updateNetworkState<T>(
  opts: RootOptions,
  fn: (state: NetworkState) => Promise<{ state?: NetworkState; result: T }> | { state?: NetworkState; result: T },
): Promise<T> {
  return withLock(
    'network',
    async () => {
      const path = networkStatePath(opts);
      const state = readJson<NetworkState>(path, emptyNetworkState());
      const { state: next, result } = await fn(state);
      if (next && next !== state) {
        mkdirSync(pocPaths(opts).network, { recursive: true, mode: 0o700 });
        writeJsonAtomic(path, next);
      }
      return result;
    },
    opts,
  );
}
