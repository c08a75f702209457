/**
 * The few functions that change the system: the bridge, veth pairs, addresses and routes (iproute2), sysctls,
 * and applying nftables scripts. Each can run inside another network namespace that plays the host
 * (`hostNetns`, a path such as /run/netns/NAME): the tests build a whole simulated host that way, and never
 * touch the real one.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { PocError } from '../errors.js';
import { defaultRouteInterface, parseProcNetRoute } from './routes.js';
import { parseNftPortsMap, parsePortRange, parseProcNetPorts } from './publish.js';

export interface NetnsOptions {
  /** Act inside this network namespace instead of the caller's (path of a netns file). */
  hostNetns?: string;
}

export interface RunOptions {
  netns?: string | undefined;
  input?: string;
}

/** Runs a command (inside `netns` through nsenter), failing with a PocError that quotes its stderr. */
export function run(cmd: string, args: string[], o: RunOptions = {}): Promise<string> {
  const [file, argv] = o.netns ? ['nsenter', [`--net=${o.netns}`, '--', cmd, ...args]] : [cmd, args];
  return new Promise((resolve, reject) => {
    const child = execFile(file, argv, { encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const detail = (stderr || '').trim() || err.message;
        const shown = o.input && cmd === 'nft' ? '' : ` ${args.join(' ')}`;
        reject(new PocError(`${cmd}${shown}: ${detail}`, 1, { cause: err }));
      } else resolve(stdout);
    });
    if (o.input !== undefined) child.stdin?.end(o.input);
  });
}

/** Applies an nftables script as one transaction. */
export async function nftApply(script: string, o: NetnsOptions = {}): Promise<void> {
  await run('nft', ['-f', '-'], { netns: o.hostNetns, input: script });
}

export async function nftTableExists(table: string, o: NetnsOptions = {}, family: 'ip' | 'ip6' = 'ip'): Promise<boolean> {
  try {
    await run('nft', ['list', 'table', family, table], { netns: o.hostNetns });
    return true;
  } catch {
    return false;
  }
}

/** Writes /proc/sys/<key> (key with slashes) in the namespace. */
export async function writeSysctl(key: string, value: string, o: NetnsOptions = {}): Promise<void> {
  const path = `/proc/sys/${key}`;
  if (!o.hostNetns) {
    try {
      writeFileSync(path, value);
    } catch (err) {
      throw new PocError(`set ${key.replace(/\//g, '.')}=${value}: ${(err as Error).message}`);
    }
    return;
  }
  await run('sh', ['-c', 'echo "$1" > "$2"', 'sh', value, path], { netns: o.hostNetns });
}

export async function linkExists(name: string, o: { netns?: string | undefined } = {}): Promise<boolean> {
  try {
    await run('ip', ['link', 'show', 'dev', name], o);
    return true;
  } catch {
    return false;
  }
}

export async function defaultUplink(exclude: string[], o: NetnsOptions = {}): Promise<string | null> {
  const text = await run('cat', ['/proc/net/route'], { netns: o.hostNetns });
  return defaultRouteInterface(parseProcNetRoute(text), exclude);
}

export interface BridgeSpec {
  bridge: string;
  gateway: string;
  prefix: number;
  /** Dual-stack: the IPv6 gateway and prefix length. */
  gateway6?: string;
  prefix6?: number;
}

/**
 * The bridge exists, has the gateway address and is up; forwarding is on, and route_localnet is on for the
 * bridge only (so that DNAT of the host's own 127.0.0.1 can leave through it; guarded in nft.ts).
 */
export async function ensureBridge(b: BridgeSpec, o: NetnsOptions = {}): Promise<void> {
  const netns = o.hostNetns;
  if (!(await linkExists(b.bridge, { netns }))) {
    try {
      // A fixed MAC: otherwise the bridge takes the lowest MAC of its ports, and it changes when that
      // container goes, leaving the others with a stale ARP entry for their gateway.
      await run('ip', ['link', 'add', b.bridge, 'address', bridgeMac(), 'type', 'bridge'], { netns });
    } catch (err) {
      if (!(await linkExists(b.bridge, { netns }))) throw err; // else made meanwhile by someone else
    }
  }
  // nodad: the address is usable at once (duplicate detection would hold it "tentative" for a second or more).
  const v6 = b.gateway6 ? `addr replace ${b.gateway6}/${b.prefix6} dev ${b.bridge} nodad\n` : '';
  await run('ip', ['-batch', '-'], { netns, input: `addr replace ${b.gateway}/${b.prefix} dev ${b.bridge}\n${v6}link set ${b.bridge} up\n` });
  await writeSysctl('net/ipv4/ip_forward', '1', o);
  if (b.gateway6) await writeSysctl('net/ipv6/conf/all/forwarding', '1', o);
  await writeSysctl(`net/ipv4/conf/${b.bridge}/route_localnet`, '1', o);
}

/** A random locally administered unicast MAC. */
export function bridgeMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * The container's MAC, from its address as docker makes it (02:42 and the four bytes of the IPv4 address): a
 * container started again with the address it kept (a user network's) has the same MAC, so the host's neighbour
 * entry for the address stays right. A random one left the old MAC in that entry, REACHABLE, and the host's
 * packets went nowhere for the half minute it took to go stale.
 */
export function containerMac(ip: string): string {
  return ['02', '42', ...ip.split('.').map((x) => Number(x).toString(16).padStart(2, '0'))].join(':');
}

/** Whether the namespace has a default IPv4 route (a container attached to a second network keeps its first). */
export async function hasDefaultRoute(netnsPath: string): Promise<boolean> {
  return (await run('ip', ['-4', 'route', 'show', 'default'], { netns: netnsPath })).trim() !== '';
}

export async function deleteLink(name: string, o: NetnsOptions = {}): Promise<boolean> {
  if (!(await linkExists(name, { netns: o.hostNetns }))) return false;
  await run('ip', ['link', 'del', 'dev', name], { netns: o.hostNetns }).catch(async (err) => {
    if (await linkExists(name, { netns: o.hostNetns })) throw err;
  });
  return true;
}

export interface VethSpec {
  bridge: string;
  vethHost: string;
  /** Path of the container's network namespace (/proc/PID/ns/net or a bind mount). */
  containerNetns: string;
  ip: string;
  prefix: number;
  gateway: string;
  /** The interface in the container (default eth0). */
  ifname?: string;
  /** Whether the container's default route goes through this network (not for internal ones, and only once). */
  defaultRoute?: boolean;
  ip6?: string;
  prefix6?: number;
  gateway6?: string;
}

/**
 * A veth pair: the host end attached to the bridge, the other end created directly inside the container's
 * namespace as eth0 (no clash with the host's own eth0), addressed, up, with lo up and the default route.
 * On failure the pair is removed again.
 */
export async function attachContainer(v: VethSpec, o: NetnsOptions = {}): Promise<void> {
  const netns = o.hostNetns;
  const dev = v.ifname ?? 'eth0';
  const route = v.defaultRoute ?? true;
  await deleteLink(v.vethHost, o); // a leftover from a run that died half-way
  await run('ip', ['link', 'add', v.vethHost, 'type', 'veth', 'peer', 'name', dev, 'address', containerMac(v.ip), 'netns', v.containerNetns], { netns });
  try {
    await run('ip', ['link', 'set', v.vethHost, 'master', v.bridge, 'up'], { netns });
    const lines = ['link set lo up', `addr add ${v.ip}/${v.prefix} dev ${dev}`];
    if (v.ip6) lines.push(`addr add ${v.ip6}/${v.prefix6} dev ${dev} nodad`);
    lines.push(`link set ${dev} up`);
    if (route) lines.push(`route add default via ${v.gateway} dev ${dev}`);
    if (route && v.gateway6) lines.push(`route add ::/0 via ${v.gateway6} dev ${dev}`);
    // nsenter from the current namespace: the container's path is valid wherever we are.
    await run('ip', ['-batch', '-'], { netns: v.containerNetns, input: `${lines.join('\n')}\n` });
  } catch (err) {
    await deleteLink(v.vethHost, o).catch(() => {});
    throw err;
  }
}

/**
 * The ports bound on the host (in its namespace) and the kernel's ephemeral range: what an ephemeral `-p` port
 * is picked around. A socket bound there (any state) makes the port unusable for the published one, and so does
 * a port another poc root publishes (in poc's nftables map `table`). Rootless poc gives no table: it cannot read
 * root's nftables, and its own containers' ports are sockets of the host's (slirp4netns's, pasta's).
 */
export async function hostPortUse(table: string | undefined, o: NetnsOptions = {}): Promise<{ range: [number, number]; bound: string[] }> {
  const files = { tcp: ['/proc/net/tcp', '/proc/net/tcp6'], udp: ['/proc/net/udp', '/proc/net/udp6'] };
  const read = (f: string) => run('cat', [f], { netns: o.hostNetns }).catch(() => '');
  const tables = Object.entries(files).flatMap(([proto, paths]) => paths.map(async (f) => parseProcNetPorts(await read(f)).map((port) => `${port}/${proto}`)));
  const [range, published, ...sockets] = await Promise.all([
    read('/proc/sys/net/ipv4/ip_local_port_range').then(parsePortRange),
    // Published by any poc root (no table yet: none).
    table ? run('nft', ['list', 'map', 'ip', table, 'ports'], { netns: o.hostNetns }).then(parseNftPortsMap, () => []) : [],
    ...tables,
  ]);
  return { range, bound: [...published, ...sockets.flat()] };
}
