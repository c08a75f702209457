/**
 * User networks (`poc network create`), planned purely: each has its own bridge and address range, checked
 * against every other network; and the attachments of containers to networks (which interface, which names).
 * The default network "bridge" (pocbr0, 10.89.0.0/16) is not one of them and stays as it always was.
 */
import { PocError } from '../errors.js';
import { shortId } from '../poc-root.js';
import { intToIp, ipToInt, inSubnet, isIpv4, parseSubnet, parseSubnet6, subnets6Overlap, subnetsOverlap, ip6At } from './address.js';
import { allNetworks, type ContainerNetwork, type NetworkSet, type NetworkState } from './ipam.js';
import { DEFAULT_NETWORK } from './flags.js';

/** Names `--network` already gives a meaning to. */
const RESERVED = new Set([DEFAULT_NETWORK, 'host', 'none', 'default']);

/** Addresses of networks created without --subnet: 10.90.0.0/24, 10.90.1.0/24, ... (the default has 10.89/16). */
const AUTO_BASE = ipToInt('10.90.0.0');
const AUTO_COUNT = 256 * 16;
/** IPv6 networks created without a v6 --subnet: fd70:6f63:0:N::/64 ("poc" in the ULA's global id). */
const AUTO6 = 'fd70:6f63:0';

export interface CreateNetworkRequest {
  name: string;
  /** 64 hex digits. */
  id: string;
  created: string;
  /** --subnet values: at most one IPv4 and (with ipv6) one IPv6. */
  subnets: string[];
  /** --gateway values, in the order of the subnets of their family. */
  gateways: string[];
  internal: boolean;
  ipv6: boolean;
  /** The host's own IPv4 routes (not poc's bridges'): a network's range must not hide any of them. */
  hostRoutes?: HostRoute[];
  /** Kept in the record (poc compose marks its networks with the project's labels). */
  labels?: Record<string, string>;
}

export interface HostRoute {
  /** "192.0.2.0/24", or an address alone for a host route. */
  dst: string;
  dev: string;
}

/** A route's destination as a range ("default" and unparsable ones: none). */
function routeRange(dst: string): { network: number; broadcast: number } | undefined {
  const m = /^([\d.]+)(?:\/(\d{1,2}))?$/.exec(dst);
  if (!m || !isIpv4(m[1]!)) return undefined;
  const prefix = m[2] === undefined ? 32 : Number(m[2]);
  if (prefix < 1 || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const network = ipToInt(m[1]!) - (ipToInt(m[1]!) % size);
  return { network, broadcast: network + size - 1 };
}

function hostRouteClash(subnet: { network: number; broadcast: number }, routes: HostRoute[]): HostRoute | undefined {
  return routes.find((r) => {
    const range = routeRange(r.dst);
    return range !== undefined && range.network <= subnet.broadcast && subnet.network <= range.broadcast;
  });
}

export function checkNetworkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new PocError(`invalid network name ${JSON.stringify(name)}: letters, digits and _.- (not first), at most 64`);
  }
  if (RESERVED.has(name)) throw new PocError(`network name ${JSON.stringify(name)} is reserved: --network ${name} already means poc's ${name === 'default' ? 'default' : name} network`);
}

/** The bridge of a user network: "pocbr" and 8 hex digits of its id (15 characters at most, IFNAMSIZ). */
export function userBridgeName(id: string): string {
  return `pocbr${id.slice(0, 8)}`;
}

/** Pure: a new network, checked against every network in the set. */
export function planNetwork(set: NetworkSet, req: CreateNetworkRequest): NetworkState {
  checkNetworkName(req.name);
  if (set.user[req.name]) throw new PocError(`network ${req.name} already exists`);
  const others = allNetworks(set);
  const v4 = req.subnets.filter((s) => !s.includes(':'));
  const v6 = req.subnets.filter((s) => s.includes(':'));
  if (v4.length > 1) throw new PocError(`--subnet: one IPv4 subnet per network (given ${v4.join(', ')})`);
  if (v6.length > 1) throw new PocError(`--subnet: one IPv6 subnet per network (given ${v6.join(', ')})`);
  if (v6.length > 0 && !req.ipv6) throw new PocError(`--subnet ${v6[0]} is IPv6: add --ipv6 for a dual-stack network`);

  let subnet;
  if (v4.length === 1) {
    subnet = parseSubnet(v4[0]!);
    for (const o of others) {
      if (subnetsOverlap(subnet, parseSubnet(o.subnet))) throw new PocError(`--subnet ${subnet.cidr} overlaps ${o.subnet} of network ${o.name ?? DEFAULT_NETWORK}`);
    }
    const clash = hostRouteClash(subnet, req.hostRoutes ?? []);
    if (clash) throw new PocError(`--subnet ${subnet.cidr} overlaps the host's route to ${clash.dst} (dev ${clash.dev})`);
  } else {
    for (let i = 0; i < AUTO_COUNT && !subnet; i++) {
      const candidate = parseSubnet(`${intToIp(AUTO_BASE + i * 256)}/24`);
      if (!others.some((o) => subnetsOverlap(candidate, parseSubnet(o.subnet))) && !hostRouteClash(candidate, req.hostRoutes ?? [])) subnet = candidate;
    }
    if (!subnet) throw new PocError('no free subnet left in 10.90.0.0/12: give one with --subnet');
  }

  let subnet6;
  if (req.ipv6) {
    if (v6.length === 1) {
      subnet6 = parseSubnet6(v6[0]!);
      for (const o of others) {
        if (o.subnet6 && subnets6Overlap(subnet6, parseSubnet6(o.subnet6))) throw new PocError(`--subnet ${subnet6.cidr} overlaps ${o.subnet6} of network ${o.name}`);
      }
    } else {
      for (let i = 0; i < 0x10000 && !subnet6; i++) {
        const candidate = parseSubnet6(`${AUTO6}:${i.toString(16)}::/64`);
        if (!others.some((o) => o.subnet6 && subnets6Overlap(candidate, parseSubnet6(o.subnet6)))) subnet6 = candidate;
      }
      if (!subnet6) throw new PocError(`no free IPv6 subnet left in ${AUTO6}::/48: give one with --subnet`);
    }
    // The IPv6 address of a container sits at its IPv4 address's offset: the v6 range must hold the v4 one.
    if (128 - subnet6.prefix < 32 - subnet.prefix) {
      throw new PocError(`--subnet ${subnet6.cidr} is smaller than ${subnet.cidr}: an IPv6 subnet of at least /${96 + subnet.prefix} is needed`);
    }
  }

  const gw4 = req.gateways.filter((g) => !g.includes(':'));
  const gw6 = req.gateways.filter((g) => g.includes(':'));
  if (gw4.length > 1 || gw6.length > 1) throw new PocError(`--gateway: one per address family (given ${req.gateways.join(', ')})`);
  let gateway = intToIp(subnet.first);
  if (gw4.length === 1) {
    const g = gw4[0]!;
    if (!isIpv4(g)) throw new PocError(`invalid --gateway ${JSON.stringify(g)}: not an IPv4 address`);
    if (!inSubnet(subnet, g) || ipToInt(g) < subnet.first || ipToInt(g) > subnet.last) throw new PocError(`--gateway ${g} is not a host address of ${subnet.cidr}`);
    gateway = g;
  }
  if (gw6.length === 1) {
    // The v6 gateway is the v4 gateway's twin (one numbering for both), so it cannot be chosen apart.
    throw new PocError(`--gateway ${gw6[0]}: the IPv6 gateway is chosen by poc (the IPv4 gateway's offset in the IPv6 subnet)`);
  }

  const state: NetworkState = {
    version: 1,
    name: req.name,
    id: req.id,
    created: req.created,
    bridge: userBridgeName(req.id),
    subnet: subnet.cidr,
    gateway,
    containers: {},
  };
  if (req.internal) state.internal = true;
  if (req.labels && Object.keys(req.labels).length > 0) state.labels = { ...req.labels };
  if (subnet6) {
    state.subnet6 = subnet6.cidr;
    state.gateway6 = ip6At(subnet6, ipToInt(gateway) - subnet.network);
  }
  return state;
}

/** A user network by name, full id or unique id prefix. */
export function findNetwork(set: NetworkSet, ref: string): NetworkState {
  const byName = set.user[ref];
  if (byName) return byName;
  const byId = Object.values(set.user).filter((n) => /^[0-9a-f]+$/.test(ref) && n.id!.startsWith(ref));
  if (byId.length === 1) return byId[0]!;
  if (byId.length > 1) throw new PocError(`network id prefix ${ref} is ambiguous: ${byId.map((n) => n.name).join(', ')}`);
  if (ref === DEFAULT_NETWORK) throw new PocError(`network ${ref} is poc's default network: it cannot be changed or removed this way`);
  throw new PocError(`no such network: ${ref} ("poc network ls" lists them)`);
}

/** The interface name a container gets on its next network: the lowest ethN it does not have yet. */
export function nextIfname(set: NetworkSet, containerId: string): string {
  const used = new Set(allNetworks(set).map((n) => n.containers[containerId]).filter((c): c is ContainerNetwork => !!c).map((c) => c.ifname ?? 'eth0'));
  for (let i = 0; ; i++) if (!used.has(`eth${i}`)) return `eth${i}`;
}

/** The networks a container is attached to, ordered by its interface (eth0 first). */
export function containerAttachments(set: NetworkSet, containerId: string): Array<{ network: NetworkState; entry: ContainerNetwork }> {
  const out = allNetworks(set)
    .filter((n) => n.containers[containerId])
    .map((network) => ({ network, entry: network.containers[containerId]! }));
  const index = (e: ContainerNetwork) => Number((e.ifname ?? 'eth0').slice(3));
  return out.sort((a, b) => index(a.entry) - index(b.entry));
}

/** The names the network's DNS gives a container: its name, its short id and its aliases. */
export function dnsNames(name: string, containerId: string, aliases: string[]): string[] {
  return [...new Set([name, shortId(containerId), ...aliases])];
}

/** The hosts file a network's DNS server reads (pure): "IP NAME..." for every container on it, v4 and v6. */
export function dnsHostsFile(network: NetworkState): string {
  const lines: string[] = [];
  for (const c of Object.values(network.containers)) {
    const names = c.names ?? [c.hostname];
    lines.push(`${c.ip}\t${names.join(' ')}`);
    if (c.ip6) lines.push(`${c.ip6}\t${names.join(' ')}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
