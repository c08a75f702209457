/**
 * The few functions that change the system: the bridge, veth pairs, addresses and routes (iproute2), sysctls,
 * and applying nftables scripts. Each can run inside another network namespace that plays the host
 * (`hostNetns`, a path such as /run/netns/NAME): the tests build a whole simulated host that way, and never
 * touch the real one.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { PocError } from '../../errors.js';
import { defaultRouteInterface, parseProcNetRoute } from './routes.js';

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

export async function nftTableExists(table: string, o: NetnsOptions = {}): Promise<boolean> {
  try {
    await run('nft', ['list', 'table', 'ip', table], { netns: o.hostNetns });
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
  await run('ip', ['-batch', '-'], { netns, input: `addr replace ${b.gateway}/${b.prefix} dev ${b.bridge}\nlink set ${b.bridge} up\n` });
  await writeSysctl('net/ipv4/ip_forward', '1', o);
  await writeSysctl(`net/ipv4/conf/${b.bridge}/route_localnet`, '1', o);
}

/** A random locally administered unicast MAC. */
export function bridgeMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
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
}

/**
 * A veth pair: the host end attached to the bridge, the other end created directly inside the container's
 * namespace as eth0 (no clash with the host's own eth0), addressed, up, with lo up and the default route.
 * On failure the pair is removed again.
 */
export async function attachContainer(v: VethSpec, o: NetnsOptions = {}): Promise<void> {
  const netns = o.hostNetns;
  await deleteLink(v.vethHost, o); // a leftover from a run that died half-way
  await run('ip', ['link', 'add', v.vethHost, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', v.containerNetns], { netns });
  try {
    await run('ip', ['link', 'set', v.vethHost, 'master', v.bridge, 'up'], { netns });
    // nsenter from the current namespace: the container's path is valid wherever we are.
    await run('ip', ['-batch', '-'], {
      netns: v.containerNetns,
      input: `link set lo up\naddr add ${v.ip}/${v.prefix} dev eth0\nlink set eth0 up\nroute add default via ${v.gateway} dev eth0\n`,
    });
  } catch (err) {
    await deleteLink(v.vethHost, o).catch(() => {});
    throw err;
  }
}
