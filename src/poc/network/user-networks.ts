/**
 * The life of a user network: create (recorded only: its bridge is made by its first container), remove
 * (refused while a container is attached; its bridge, DNS server and rules go), prune; and a container
 * joining or leaving one while it runs (connect, disconnect). Every change is made under the network lock,
 * so it never interleaves with a container being wired into a network.
 */
import { randomBytes } from 'node:crypto';
import { PocError } from '../errors.js';
import type { RootOptions } from '../poc-root.js';
import { allocateContainerNetwork, listContainerNetworks, setupContainerNetwork, teardownContainerNetwork, type Attachment, type ContainerNetworkInfo, type NetworkOptions } from './container.js';
import { dnsDir, stopDnsServer } from './dns.js';
import { allNetworks, readNetworkSet, updateNetworkSet, type NetworkState } from './ipam.js';
import { checkAlias } from './flags.js';
import { findNetwork, planNetwork, type CreateNetworkRequest, type HostRoute } from './networks.js';
import { NFT_TABLE, nftBaseScript } from './nft.js';
import { defaultUplink, deleteLink, linkExists, nftApply, nftTableExists, run, type NetnsOptions } from './system.js';

export type CreateOptions = RootOptions & NetnsOptions & Omit<CreateNetworkRequest, 'id' | 'created' | 'hostRoutes'>;

/** The host's IPv4 routes in its main table, but those of poc's own bridges and the default route. */
async function hostRoutes(o: NetnsOptions, bridges: string[]): Promise<HostRoute[]> {
  const routes = JSON.parse((await run('ip', ['-4', '-j', 'route', 'show', 'table', 'main'], { netns: o.hostNetns })) || '[]') as Array<{ dst?: string; dev?: string }>;
  return routes.filter((r) => r.dst && r.dst !== 'default' && !bridges.includes(r.dev ?? '')).map((r) => ({ dst: r.dst!, dev: r.dev ?? '' }));
}

export async function createNetwork(o: CreateOptions): Promise<NetworkState> {
  const id = randomBytes(32).toString('hex');
  return updateNetworkSet(o, async (set) => {
    const routes = await hostRoutes(o, allNetworks(set).map((n) => n.bridge));
    const state = planNetwork(set, { ...o, id, created: new Date().toISOString(), hostRoutes: routes });
    return { set: { ...set, user: { ...set.user, [state.name!]: state } }, result: state };
  });
}

export function listNetworks(opts: RootOptions = {}): NetworkState[] {
  return allNetworks(readNetworkSet(opts));
}

export function inspectNetwork(ref: string, opts: RootOptions = {}): NetworkState {
  const set = readNetworkSet(opts);
  return ref === 'bridge' ? set.default : findNetwork(set, ref);
}

/** The containers attached to a network, by id. */
export function networkContainers(ref: string, opts: RootOptions = {}): string[] {
  return Object.keys(inspectNetwork(ref, opts).containers);
}

/** Rewrites poc's base rules for the networks left (only if the table is there: nothing is wired otherwise). */
async function rewriteBaseRules(networks: NetworkState[], o: NetnsOptions): Promise<void> {
  if (!(await nftTableExists(NFT_TABLE, o))) return;
  const uplink = await defaultUplink(networks.map((n) => n.bridge), o);
  const script = nftBaseScript({
    uplink,
    networks: networks.map((n) => ({ bridge: n.bridge, subnet: n.subnet, ...(n.subnet6 ? { subnet6: n.subnet6 } : {}), ...(n.internal ? { internal: true } : {}) })),
  });
  // A table ip6 poc made for a dual-stack network that is gone keeps empty chains: harmless, and prune removes it.
  await nftApply(script, o);
}

/**
 * Removes a network with no container attached: its DNS server, its bridge, its rules, its record. The
 * caller stops and disconnects the containers first for `rm -f`. Returns its name.
 */
export async function removeNetwork(ref: string, o: RootOptions & NetnsOptions = {}): Promise<string> {
  return updateNetworkSet(o, async (set) => {
    const state = findNetwork(set, ref);
    const attached = Object.values(state.containers);
    if (attached.length > 0) {
      throw new PocError(
        `network ${state.name} is in use by ${attached.length} container${attached.length > 1 ? 's' : ''} (${attached.map((c) => c.names?.[0] ?? c.hostname).join(', ')}): disconnect ${attached.length > 1 ? 'them' : 'it'}, or use -f to stop ${attached.length > 1 ? 'them' : 'it'} first`,
      );
    }
    await stopDnsServer(dnsDir(state.name!, o));
    if (await linkExists(state.bridge, { netns: o.hostNetns })) await deleteLink(state.bridge, o);
    const user = { ...set.user };
    delete user[state.name!];
    const next = { ...set, user };
    await rewriteBaseRules(allNetworks(next), o);
    return { set: next, result: state.name! };
  });
}

export interface ConnectOptions extends NetworkOptions {
  containerId: string;
  hostname: string;
  name: string;
  /** The running container's init; absent for a stopped one (wired at its next start). */
  pid?: number;
  attachment: Attachment;
}

/** Joins a container to one more network; a running one gets its interface at once. */
export async function connectContainer(o: ConnectOptions): Promise<ContainerNetworkInfo> {
  for (const a of o.attachment.aliases ?? []) checkAlias(a);
  const set = readNetworkSet(o);
  const state = o.attachment.network === 'bridge' ? set.default : findNetwork(set, o.attachment.network);
  if (state.containers[o.containerId]) throw new PocError(`container ${o.name} is already connected to network ${state.name ?? 'bridge'}`);
  const name = state.name ?? 'bridge';
  await allocateContainerNetwork({ ...o, networks: [{ ...o.attachment, network: name }] });
  if (o.pid === undefined) return listContainerNetworks(o.containerId, o).find((n) => n.network === name)!;
  try {
    await setupContainerNetwork({ ...o, pid: o.pid, only: name });
  } catch (err) {
    await teardownContainerNetwork({ ...o, only: name, release: true }).catch(() => {});
    throw err;
  }
  return listContainerNetworks(o.containerId, o).find((n) => n.network === name)!;
}

/** Takes a container off a network: its interface goes (at once if it runs), and its address is freed. */
export async function disconnectContainer(o: NetworkOptions & { containerId: string; name: string; network: string }): Promise<void> {
  const set = readNetworkSet(o);
  const state = o.network === 'bridge' ? set.default : findNetwork(set, o.network);
  const name = state.name ?? 'bridge';
  if (!state.containers[o.containerId]) throw new PocError(`container ${o.name} is not connected to network ${name}`);
  await teardownContainerNetwork({ ...o, only: name, release: true });
}
