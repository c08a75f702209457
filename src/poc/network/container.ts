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
import { PocError, wrapError } from '../../errors.js';
import { CONTAINER_ID_ANNOTATION } from '../containers/bundle.js';
import type { RootOptions } from '../store.js';
import { parseSubnet } from './address.js';
import {
  allocate,
  configureNetwork,
  readNetworkState,
  release,
  updateNetworkState,
  type BridgeConfig,
  type ContainerNetwork,
  type NetworkState,
} from './ipam.js';
import { NFT_TABLE, nftBaseScript, nftContainerScript, nftContainerTeardownScript, nftDeleteTableScript } from './nft.js';
import { parsePublish, type PortMapping } from './publish.js';
import { attachContainer, defaultUplink, deleteLink, ensureBridge, linkExists, nftApply, nftTableExists, type NetnsOptions } from './system.js';

export interface NetworkOptions extends RootOptions, NetnsOptions, BridgeConfig {}

export interface ContainerNetworkInfo extends ContainerNetwork {
  bridge: string;
  gateway: string;
  /** Prefix length of the subnet (16 for the default). */
  prefix: number;
  subnet: string;
}

function info(state: NetworkState, c: ContainerNetwork): ContainerNetworkInfo {
  return { ...c, bridge: state.bridge, gateway: state.gateway, subnet: state.subnet, prefix: parseSubnet(state.subnet).prefix };
}

export interface AllocateOptions extends NetworkOptions {
  containerId: string;
  hostname: string;
  /** PortMapping objects or `-p` strings. */
  publish?: Array<PortMapping | string>;
  ip?: string;
}

/** Reserves an address and the published ports; the same container asking again gets the same address. */
export async function allocateContainerNetwork(o: AllocateOptions): Promise<ContainerNetworkInfo> {
  const publish = (o.publish ?? []).map((p) => (typeof p === 'string' ? parsePublish(p) : p));
  return updateNetworkState(o, (state) => {
    const configured = configureNetwork(state, o);
    const { state: next, entry } = allocate(configured, { containerId: o.containerId, hostname: o.hostname, publish, ...(o.ip ? { ip: o.ip } : {}) });
    return { state: next, result: info(next, entry) };
  });
}

export function getContainerNetwork(containerId: string, opts: RootOptions = {}): ContainerNetworkInfo | undefined {
  const state = readNetworkState(opts);
  const c = state.containers[containerId];
  return c ? info(state, c) : undefined;
}

export function listContainerNetworks(opts: RootOptions = {}): ContainerNetworkInfo[] {
  const state = readNetworkState(opts);
  return Object.values(state.containers).map((c) => info(state, c));
}

export interface SetupOptions extends RootOptions, NetnsOptions {
  containerId: string;
  /** The container's init pid (as in the OCI state a hook gets on stdin)... */
  pid?: number;
  /** ...or the path of its network namespace. */
  netnsPath?: string;
}

/** Wires an allocated container into the bridge; returns its network. */
export async function setupContainerNetwork(o: SetupOptions): Promise<ContainerNetworkInfo> {
  const netnsPath = o.netnsPath ?? (o.pid !== undefined ? `/proc/${o.pid}/ns/net` : undefined);
  if (!netnsPath) throw new PocError(`network setup of ${o.containerId}: neither a pid nor a network namespace path given`);
  try {
    return await updateNetworkState(o, async (state) => {
      const c = state.containers[o.containerId];
      if (!c) throw new PocError(`container ${o.containerId} has no network allocated`);
      const subnet = parseSubnet(state.subnet);
      await ensureBridge({ bridge: state.bridge, gateway: state.gateway, prefix: subnet.prefix }, o);
      const uplink = await defaultUplink([state.bridge], o);
      await attachContainer({ bridge: state.bridge, vethHost: c.vethHost, containerNetns: netnsPath, ip: c.ip, prefix: subnet.prefix, gateway: state.gateway }, o);
      try {
        await nftApply(nftBaseScript({ bridge: state.bridge, subnet: state.subnet, uplink }) + nftContainerScript(c), o);
      } catch (err) {
        await deleteLink(c.vethHost, o).catch(() => {});
        throw err;
      }
      return { result: info(state, c) };
    });
  } catch (err) {
    throw wrapError(`network setup of container ${o.containerId}`, err);
  }
}

export interface TeardownOptions extends RootOptions, NetnsOptions {
  containerId: string;
  /** Also free the address and ports (the container is being removed). */
  release?: boolean;
}

/** Removes the container's veth and nftables rules (and with `release`, its allocation). No error if gone. */
export async function teardownContainerNetwork(o: TeardownOptions): Promise<void> {
  try {
    await updateNetworkState(o, async (state) => {
      const c = state.containers[o.containerId];
      if (!c) return { result: undefined };
      await deleteLink(c.vethHost, o);
      if (await nftTableExists(NFT_TABLE, o)) await nftApply(nftContainerTeardownScript(c), o);
      return { state: o.release ? release(state, o.containerId) : state, result: undefined };
    });
  } catch (err) {
    throw wrapError(`network teardown of container ${o.containerId}`, err);
  }
}

/** Frees a container's address and ports (after its teardown). */
export async function releaseContainerNetwork(o: RootOptions & { containerId: string }): Promise<void> {
  await updateNetworkState(o, (state) => ({ state: release(state, o.containerId), result: undefined }));
}

/**
 * Removes everything poc's networking made: each container's veth, poc's nftables table, the bridge, and
 * the allocations. For `poc prune` with no containers left, and for tests.
 */
export async function destroyNetwork(o: RootOptions & NetnsOptions = {}): Promise<void> {
  await updateNetworkState(o, async (state) => {
    for (const c of Object.values(state.containers)) await deleteLink(c.vethHost, o);
    if (await nftTableExists(NFT_TABLE, o)) await nftApply(nftDeleteTableScript(), o);
    if (await linkExists(state.bridge, { netns: o.hostNetns })) await deleteLink(state.bridge, o);
    return { state: { ...state, containers: {}, lastAllocated: undefined } as NetworkState, result: undefined };
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
