/**
 * A container's network, in three steps that match its life:
 *
 *   allocateContainerNetwork   at `poc create`: address and published ports recorded (checked for clashes);
 *                              returns what poc writes into /etc/hosts and shows in inspect
 *   setupContainerNetwork      from the createRuntime hook (it has the container's pid) or by poc itself:
 *                              bridge, veth pair, addresses, route, nftables rules
 *   teardownContainerNetwork   from the poststop hook or `poc stop/rm`: veth and rules removed; with
 *                              `release`, the address and ports are freed too (`poc rm`)
 *
 * Every step is idempotent, so a hook that runs twice or a cleanup after a crash does no harm.
 */
import { PocError, wrapError } from '../errors.js';
import { CONTAINER_ID_ANNOTATION } from '../containers/bundle.js';
import type { RootOptions } from '../poc-root.js';
import { parseSubnet, parseSubnet6 } from './address.js';
import { dnsDir, ensureDnsServer, stopDnsServer, upstreamServers } from './dns.js';
import { readHostResolvConf } from './etc-files.js';
import {
  allNetworks,
  allocate,
  configureNetwork,
  readNetworkSet,
  release,
  updateNetworkSet,
  type BridgeConfig,
  type ContainerNetwork,
  type NetworkSet,
  type NetworkState,
} from './ipam.js';
import { DEFAULT_NETWORK } from './flags.js';
import { containerAttachments, dnsHostsFile, dnsNames, findNetwork, nextIfname } from './networks.js';
import { NFT_TABLE, nftBaseScript, nftContainerScript, nftContainerTeardownScript, nftDeleteTableScript } from './nft.js';
import { EPHEMERAL, formatPublish, parsePublish, pickHostPorts, type PortMapping } from './publish.js';
import { attachContainer, defaultUplink, deleteLink, ensureBridge, hasDefaultRoute, hostPortUse, linkExists, nftApply, nftTableExists, type NetnsOptions } from './system.js';

export interface NetworkOptions extends RootOptions, NetnsOptions, BridgeConfig {
  /** resolv.conf text whose nameservers a user network's DNS forwards to (default: the host's). */
  hostResolvConf?: string;
}

export interface ContainerNetworkInfo extends ContainerNetwork {
  /** "bridge" for the default network, else the user network's name (and its id). */
  network: string;
  networkId?: string;
  bridge: string;
  gateway: string;
  /** Prefix length of the subnet (16 for the default). */
  prefix: number;
  subnet: string;
  internal: boolean;
  subnet6?: string;
  gateway6?: string;
}

function info(state: NetworkState, c: ContainerNetwork): ContainerNetworkInfo {
  return {
    ...c,
    network: state.name ?? DEFAULT_NETWORK,
    ...(state.id ? { networkId: state.id } : {}),
    bridge: state.bridge,
    gateway: state.gateway,
    subnet: state.subnet,
    prefix: parseSubnet(state.subnet).prefix,
    internal: state.internal ?? false,
    ...(state.subnet6 ? { subnet6: state.subnet6, gateway6: state.gateway6! } : {}),
  };
}

/** One network a container joins: `--network NAME`, with `--network-alias` and `--ip`. */
export interface Attachment {
  network: string;
  aliases?: string[];
  ip?: string;
}

export interface AllocateOptions extends NetworkOptions {
  containerId: string;
  hostname: string;
  /** The container's name, which the network's DNS answers for (with its short id and aliases). */
  name?: string;
  /** PortMapping objects or `-p` strings: published on the first network. */
  publish?: Array<PortMapping | string>;
  ip?: string;
  /** The networks, in order (eth0 on the first); absent: the default network alone. */
  networks?: Attachment[];
}

/** The state a network name refers to in the set ("bridge": the default). */
function networkIn(set: NetworkSet, name: string): NetworkState {
  return name === DEFAULT_NETWORK ? set.default : findNetwork(set, name);
}

/** Replaces one network's state in the set (pure). */
function withNetwork(set: NetworkSet, state: NetworkState): NetworkSet {
  return state.name ? { ...set, user: { ...set.user, [state.name]: state } } : { ...set, default: state };
}

/** Ports are the host's: one published by a container on another network clashes too. */
function checkPortsFree(set: NetworkSet, containerId: string, publish: PortMapping[]): void {
  for (const p of publish) {
    if (p.hostPort === EPHEMERAL) continue;
    for (const n of allNetworks(set)) {
      for (const other of Object.values(n.containers)) {
        if (other.containerId === containerId) continue;
        const clash = other.publish.find((q) => q.hostPort === p.hostPort && q.protocol === p.protocol);
        if (clash) throw new PocError(`port ${p.hostPort}/${p.protocol} is already published by container ${other.hostname || other.containerId} (${formatPublish(clash)})`);
      }
    }
  }
}

/** "PORT/PROTOCOL" of every port published by a container other than this one (pure). */
function publishedByOthers(set: NetworkSet, containerId: string): string[] {
  return allNetworks(set).flatMap((n) => Object.values(n.containers).filter((c) => c.containerId !== containerId).flatMap((c) => c.publish.map((q) => `${q.hostPort}/${q.protocol}`)));
}

/** Pure: the container on one more network (the same address again if it is on it already). */
function allocateIn(set: NetworkSet, o: { containerId: string; hostname: string; name?: string; publish: PortMapping[]; ip?: string }, att: Attachment): NetworkSet {
  let state = networkIn(set, att.network);
  if (!state.name) state = configureNetwork(state, {});
  const existing = state.containers[o.containerId];
  const names = state.name ? dnsNames(o.name ?? o.hostname, o.containerId, att.aliases ?? []) : undefined;
  const { state: next } = allocate(state, {
    containerId: o.containerId,
    hostname: o.hostname,
    publish: o.publish,
    ...(att.ip ?? o.ip ? { ip: (att.ip ?? o.ip)! } : {}),
    ifname: existing?.ifname ?? nextIfname(set, o.containerId),
    ...(names ? { names } : {}),
  });
  return withNetwork(set, next);
}

/**
 * Reserves an address on each of the container's networks and its published ports (on the first); the same
 * container asking again gets the same addresses. An ephemeral port (`-p 80`) is picked here, under the lock,
 * around the host's bound sockets and the other containers' ports; the result's `publish` holds the picked ones.
 * Returns the first network's.
 */
export async function allocateContainerNetwork(o: AllocateOptions): Promise<ContainerNetworkInfo> {
  const asked = (o.publish ?? []).flatMap((p) => (typeof p === 'string' ? parsePublish(p) : [p]));
  const atts = o.networks && o.networks.length > 0 ? o.networks : [{ network: DEFAULT_NETWORK }];
  // Read outside the lock: the host's sockets, only when a port is to be picked.
  const host = asked.some((p) => p.hostPort === EPHEMERAL) ? await hostPortUse(NFT_TABLE, o) : undefined;
  return updateNetworkSet(o, (set) => {
    if (o.bridge !== undefined || o.subnet !== undefined) set = { ...set, default: configureNetwork(set.default, o) };
    checkPortsFree(set, o.containerId, asked);
    const publish = host ? pickHostPorts(asked, { range: host.range, taken: new Set([...host.bound, ...publishedByOthers(set, o.containerId)]) }) : asked;
    let next = set;
    atts.forEach((att, i) => {
      next = allocateIn(next, { containerId: o.containerId, hostname: o.hostname, ...(o.name ? { name: o.name } : {}), publish: i === 0 ? publish : [], ...(i === 0 && o.ip ? { ip: o.ip } : {}) }, att);
    });
    const first = networkIn(next, atts[0]!.network);
    return { set: next, result: info(first, first.containers[o.containerId]!) };
  });
}

/** The container's first network (eth0), if it has one. */
export function getContainerNetwork(containerId: string, opts: RootOptions = {}): ContainerNetworkInfo | undefined {
  return listContainerNetworks(containerId, opts)[0];
}

/** Every network the container is on, eth0 first. */
export function listContainerNetworks(containerId: string, opts: RootOptions = {}): ContainerNetworkInfo[] {
  return containerAttachments(readNetworkSet(opts), containerId).map(({ network, entry }) => info(network, entry));
}

export interface SetupOptions extends NetworkOptions {
  containerId: string;
  /** The container's init pid (as in the OCI state a hook gets on stdin)... */
  pid?: number;
  /** ...or the path of its network namespace. */
  netnsPath?: string;
  /** Only this network (`poc network connect` of a running container); default: all of its networks. */
  only?: string;
}

/** What the base rules are made of: every network. */
function baseScript(set: NetworkSet, uplink: string | null): string {
  return nftBaseScript({
    uplink,
    networks: allNetworks(set).map((n) => ({ bridge: n.bridge, subnet: n.subnet, ...(n.subnet6 ? { subnet6: n.subnet6 } : {}), ...(n.internal ? { internal: true } : {}) })),
  });
}

/** The entry whose address the container's published ports lead to (the one holding them, else the first). */
function publishEntry(set: NetworkSet, containerId: string): ContainerNetwork | undefined {
  const atts = containerAttachments(set, containerId);
  return (atts.find((a) => a.entry.publish.length > 0) ?? atts[0])?.entry;
}

/** Rewrites a user network's DNS hosts file (its running containers) and starts or stops its server. */
async function syncDns(state: NetworkState, o: NetworkOptions): Promise<void> {
  if (!state.name) return;
  const dir = dnsDir(state.name, o);
  if (!Object.values(state.containers).some((c) => c.up)) {
    await stopDnsServer(dir);
    return;
  }
  const upstreams = upstreamServers(o.hostResolvConf ?? readHostResolvConf());
  const listen = [state.gateway, ...(state.gateway6 ? [state.gateway6] : [])];
  const running = { ...state, containers: Object.fromEntries(Object.entries(state.containers).filter(([, c]) => c.up)) };
  await ensureDnsServer({ dir, listen, upstreams }, dnsHostsFile(running), o);
}

/** Wires an allocated container into its networks' bridges; returns its first network. */
export async function setupContainerNetwork(o: SetupOptions): Promise<ContainerNetworkInfo> {
  const netnsPath = o.netnsPath ?? (o.pid !== undefined ? `/proc/${o.pid}/ns/net` : undefined);
  if (!netnsPath) throw new PocError(`network setup of ${o.containerId}: neither a pid nor a network namespace path given`);
  try {
    return await updateNetworkSet(o, async (set) => {
      const atts = containerAttachments(set, o.containerId).filter((a) => o.only === undefined || (a.network.name ?? DEFAULT_NETWORK) === o.only);
      if (atts.length === 0) throw new PocError(`container ${o.containerId} has no network allocated${o.only ? ` on ${o.only}` : ''}`);
      const uplink = await defaultUplink(allNetworks(set).map((n) => n.bridge), o);
      // One default route: through the first network with a way out (on connect: only if it has none yet).
      let routed = o.only !== undefined ? await hasDefaultRoute(netnsPath) : false;
      const made: string[] = [];
      let next = set;
      try {
        for (const { network, entry } of atts) {
          const subnet = parseSubnet(network.subnet);
          const prefix6 = network.subnet6 ? parseSubnet6(network.subnet6).prefix : undefined;
          await ensureBridge({ bridge: network.bridge, gateway: network.gateway, prefix: subnet.prefix, ...(network.gateway6 ? { gateway6: network.gateway6, prefix6: prefix6! } : {}) }, o);
          const route = !routed && !network.internal;
          routed ||= route;
          made.push(entry.vethHost);
          await attachContainer(
            {
              bridge: network.bridge,
              vethHost: entry.vethHost,
              containerNetns: netnsPath,
              ip: entry.ip,
              prefix: subnet.prefix,
              gateway: network.gateway,
              ifname: entry.ifname ?? 'eth0',
              defaultRoute: route,
              ...(entry.ip6 ? { ip6: entry.ip6, prefix6: prefix6!, gateway6: network.gateway6! } : {}),
            },
            o,
          );
          next = withNetwork(next, { ...network, containers: { ...network.containers, [o.containerId]: { ...entry, up: true } } });
        }
        const pub = publishEntry(set, o.containerId)!;
        await nftApply(baseScript(next, uplink) + nftContainerScript(pub), o);
        for (const { network } of atts) await syncDns(networkIn(next, network.name ?? DEFAULT_NETWORK), o);
      } catch (err) {
        for (const v of made) await deleteLink(v, o).catch(() => {});
        for (const { network } of atts) await syncDns(networkIn(set, network.name ?? DEFAULT_NETWORK), o).catch(() => {});
        throw err;
      }
      const first = atts[0]!;
      return { set: next, result: info(networkIn(next, first.network.name ?? DEFAULT_NETWORK), { ...first.entry, up: true }) };
    });
  } catch (err) {
    throw wrapError(`network setup of container ${o.containerId}`, err);
  }
}

export interface TeardownOptions extends NetworkOptions {
  containerId: string;
  /** Also free the address and ports (the container is being removed, or disconnected). */
  release?: boolean;
  /** Only this network (`poc network disconnect`); default: all of its networks. */
  only?: string;
}

/** Removes the container's veths and nftables rules (and with `release`, its allocations). No error if gone. */
export async function teardownContainerNetwork(o: TeardownOptions): Promise<void> {
  try {
    await updateNetworkSet(o, async (set) => {
      const atts = containerAttachments(set, o.containerId).filter((a) => o.only === undefined || (a.network.name ?? DEFAULT_NETWORK) === o.only);
      if (atts.length === 0) return { result: undefined };
      const pub = publishEntry(set, o.containerId)!;
      let next = set;
      for (const { network, entry } of atts) {
        await deleteLink(entry.vethHost, o);
        const down = { ...network, containers: { ...network.containers, [o.containerId]: { ...entry, up: false } } };
        delete down.containers[o.containerId]!.up;
        next = withNetwork(next, o.release ? release(down, o.containerId) : down);
      }
      // The chain of published ports goes with the interface their address is on.
      const pubGone = atts.some((a) => a.entry.vethHost === pub.vethHost);
      if (pubGone && (await nftTableExists(NFT_TABLE, o))) await nftApply(nftContainerTeardownScript(pub), o);
      for (const { network } of atts) await syncDns(networkIn(next, network.name ?? DEFAULT_NETWORK), o);
      return { set: next, result: undefined };
    });
  } catch (err) {
    throw wrapError(`network teardown of container ${o.containerId}`, err);
  }
}

/** Frees a container's addresses and ports on every network (after its teardown). */
export async function releaseContainerNetwork(o: RootOptions & { containerId: string }): Promise<void> {
  await updateNetworkSet(o, (set) => {
    let next = set;
    for (const { network } of containerAttachments(set, o.containerId)) next = withNetwork(next, release(network, o.containerId));
    return { set: next, result: undefined };
  });
}

/**
 * Removes everything poc's networking made at run time: each container's veth, the DNS servers, poc's
 * nftables tables and every bridge, and the allocations. The user networks themselves stay defined (their
 * bridges are made again by their next container). For `poc prune` with no containers left, and for tests.
 */
export async function destroyNetwork(o: RootOptions & NetnsOptions = {}): Promise<void> {
  await updateNetworkSet(o, async (set) => {
    for (const n of allNetworks(set)) {
      for (const c of Object.values(n.containers)) await deleteLink(c.vethHost, o);
      if (n.name) await stopDnsServer(dnsDir(n.name, o));
    }
    if ((await nftTableExists(NFT_TABLE, o)) || (await nftTableExists(NFT_TABLE, o, 'ip6'))) await nftApply(nftDeleteTableScript(), o);
    for (const n of allNetworks(set)) if (await linkExists(n.bridge, { netns: o.hostNetns })) await deleteLink(n.bridge, o);
    const clear = (n: NetworkState): NetworkState => {
      const out = { ...n, containers: {} };
      delete out.lastAllocated;
      return out;
    };
    return { set: { default: clear(set.default), user: Object.fromEntries(Object.entries(set.user).map(([k, n]) => [k, clear(n)])) }, result: undefined };
  });
}

// ---------------------------------------------------------------------------------------------------------
// OCI hooks

export interface HookState {
  id: string;
  pid?: number;
  bundle?: string;
  status?: string;
  annotations: Record<string, string>;
}

/** The container state a hook receives on stdin (runtime-spec "state"); errors name what is missing. */
export function parseHookState(text: string): HookState {
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch (err) {
    throw new PocError(`hook: the container state on stdin is not JSON (${(err as Error).message})`);
  }
  if (!s || typeof s !== 'object') throw new PocError('hook: the container state on stdin is not an object');
  const o = s as Record<string, unknown>;
  if (typeof o.id !== 'string' || o.id === '') throw new PocError('hook: the container state has no "id"');
  const out: HookState = { id: o.id, annotations: {} };
  if (o.pid !== undefined) {
    if (typeof o.pid !== 'number' || !Number.isInteger(o.pid) || o.pid <= 0) throw new PocError(`hook: invalid "pid" ${JSON.stringify(o.pid)} in container state`);
    out.pid = o.pid;
  }
  if (typeof o.bundle === 'string') out.bundle = o.bundle;
  if (typeof o.status === 'string') out.status = o.status;
  if (o.annotations && typeof o.annotations === 'object') out.annotations = o.annotations as Record<string, string>;
  return out;
}

/** Reads all of stdin (for a hook process). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The whole of a network hook: `poc` puts `[poc-binary, "hook", "network", "setup"|"teardown"]` (for example) in
 * the createRuntime and poststop hooks of config.json, and the command calls this with stdin. The container is
 * the annotation io.poc.container.id if set, else the OCI id. Setup needs the pid; teardown does not.
 */
export async function runNetworkHook(
  action: 'setup' | 'teardown',
  stateJson: string,
  opts: RootOptions & NetnsOptions & { release?: boolean } = {},
): Promise<void> {
  const state = parseHookState(stateJson);
  const containerId = state.annotations[CONTAINER_ID_ANNOTATION] ?? state.id;
  if (action === 'setup') {
    if (state.pid === undefined) throw new PocError(`hook: the container state of ${state.id} has no "pid" (setup must run as a createRuntime hook)`);
    await setupContainerNetwork({ ...opts, containerId, pid: state.pid });
  } else {
    await teardownContainerNetwork({ ...opts, containerId, ...(opts.release ? { release: true } : {}) });
  }
}
