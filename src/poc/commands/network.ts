/**
 * `poc network create|ls|inspect|rm|prune|connect|disconnect`: user networks (src/poc/network/user-networks.ts).
 */
import { stdout } from '../../common/output.js';
import { UserError, PocError } from '../errors.js';
import { containerStatus, listContainers, resolveContainer } from '../containers/container-store.js';
import { stopContainer } from '../containers/stop.js';
import {
  connectContainer,
  createNetwork,
  disconnectContainer,
  inspectNetwork,
  listNetworks,
  removeNetwork,
  type NetworkState,
} from '../network/index.js';
import { shortId, type RootOptions } from '../poc-root.js';
import { forEachRef } from './each.js';
import { table } from './format.js';

export interface NetworkCreateOptions extends RootOptions {
  name: string;
  subnets: string[];
  gateways: string[];
  internal: boolean;
  ipv6: boolean;
}

export async function networkCreateCommand(o: NetworkCreateOptions): Promise<number> {
  const n = await createNetwork(o);
  stdout(`${n.id}\n`);
  return 0;
}

function networkName(n: NetworkState): string {
  return n.name ?? 'bridge';
}

/** docker's `network inspect` shape, with the containers by id. */
function networkJson(n: NetworkState, o: RootOptions): unknown {
  const names = new Map(listContainers(o).map((c) => [c.id, c.name]));
  const config: Array<Record<string, string>> = [{ Subnet: n.subnet, Gateway: n.gateway }];
  if (n.subnet6) config.push({ Subnet: n.subnet6, Gateway: n.gateway6! });
  return {
    Name: networkName(n),
    Id: n.id ?? '',
    Created: n.created ?? '',
    Driver: 'bridge',
    EnableIPv6: Boolean(n.subnet6),
    Internal: n.internal ?? false,
    IPAM: { Driver: 'default', Config: config },
    Options: { 'com.docker.network.bridge.name': n.bridge },
    Containers: Object.fromEntries(
      Object.values(n.containers).map((c) => [
        c.containerId,
        {
          Name: names.get(c.containerId) ?? c.hostname,
          IPv4Address: `${c.ip}/${n.subnet.split('/')[1]}`,
          IPv6Address: c.ip6 ? `${c.ip6}/${n.subnet6!.split('/')[1]}` : '',
          Interface: c.ifname ?? 'eth0',
          Aliases: c.names ?? [],
        },
      ]),
    ),
  };
}

export function networkLsCommand(o: RootOptions & { format: 'table' | 'json'; quiet: boolean }): number {
  const nets = listNetworks(o);
  if (o.quiet) {
    stdout(nets.filter((n) => n.name).map((n) => `${n.name}\n`).join(''));
    return 0;
  }
  if (o.format === 'json') {
    stdout(`${JSON.stringify(nets.map((n) => networkJson(n, o)), null, 2)}\n`);
    return 0;
  }
  const rows = nets.map((n) => [
    n.id ? shortId(n.id) : '-',
    networkName(n),
    n.bridge,
    [n.subnet, ...(n.subnet6 ? [n.subnet6] : [])].join(','),
    n.internal ? 'internal' : '',
    String(Object.keys(n.containers).length),
  ]);
  stdout(table(['NETWORK ID', 'NAME', 'BRIDGE', 'SUBNET', 'FLAGS', 'CONTAINERS'], rows));
  return 0;
}

export function networkInspectCommand(o: RootOptions & { refs: string[] }): number {
  const out = o.refs.map((r) => networkJson(inspectNetwork(r, o), o));
  stdout(`${JSON.stringify(out, null, 2)}\n`);
  return 0;
}

/**
 * `network rm [-f]`: refused while a container is attached; -f stops the running ones and disconnects them all
 * first (as podman's `network rm -f` frees the network of its containers).
 */
export async function networkRmCommand(o: RootOptions & { refs: string[]; force: boolean }): Promise<number> {
  return forEachRef(o.refs, async (ref) => {
    if (o.force) {
      const n = inspectNetwork(ref, o);
      if (!n.name) throw new PocError('network bridge is poc\'s default network: it cannot be removed');
      for (const c of listContainers(o).filter((x) => n.containers[x.id])) {
        await stopContainer(c, o);
        await disconnectContainer({ ...o, containerId: c.id, name: c.name, network: n.name });
      }
    }
    stdout(`${await removeNetwork(ref, o)}\n`);
  });
}

/** Removes every user network no container is attached to. */
export async function networkPruneCommand(o: RootOptions): Promise<number> {
  for (const n of listNetworks(o)) {
    if (!n.name || Object.keys(n.containers).length > 0) continue;
    try {
      stdout(`Deleted network: ${await removeNetwork(n.name, o)}\n`);
    } catch (err) {
      // attached to meanwhile: it is in use, which is what prune leaves alone
      if (!(err instanceof UserError) || !/is in use/.test(err.message)) throw err;
    }
  }
  return 0;
}

export async function networkConnectCommand(o: RootOptions & { network: string; ref: string; aliases: string[]; ip?: string }): Promise<number> {
  const c = resolveContainer(o.ref, o);
  if (c.options.network !== 'bridge') throw new PocError(`container ${c.name} has --network ${c.options.network}: it cannot join other networks`);
  const s = containerStatus(c.id, o);
  await connectContainer({
    ...o,
    containerId: c.id,
    hostname: c.hostname,
    name: c.name,
    ...(s.status === 'running' && s.pid ? { pid: s.pid } : {}),
    attachment: { network: o.network, aliases: o.aliases, ...(o.ip ? { ip: o.ip } : {}) },
  });
  return 0;
}

export async function networkDisconnectCommand(o: RootOptions & { network: string; ref: string }): Promise<number> {
  const c = resolveContainer(o.ref, o);
  await disconnectContainer({ ...o, containerId: c.id, name: c.name, network: o.network });
  return 0;
}
