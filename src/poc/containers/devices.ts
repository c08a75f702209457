/**
 * The host's device nodes a container gets: `--device`'s, read from the node itself, and with `--privileged`
 * every node under the host's /dev, as docker and runc (libcontainer/devices.HostDevices) gather them.
 */
import { lstatSync, readdirSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { PocError, errnoCode, wrapError } from '../errors.js';
import type { DeviceNode } from '../../vocabulary/device-node.js';
import type { DeviceRequest } from './docker-options.js';

export type ContainerDevice = DeviceNode & { access?: string };

/** Directories of /dev that are not the host's devices (each container has its own) or hold links only. */
const SKIPPED = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

function nodeOf(st: Stats, path: string): DeviceNode | undefined {
  const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : undefined;
  if (!type) return undefined;
  // Linux's new_encode_dev: major in bits 8-19 (and 32+), minor in bits 0-7 and 20-31.
  const rdev = st.rdev;
  const major = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
  return { path, type, major, minor, fileMode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

/** `--device`: each a character or block device on the host, made at its container path. */
export function requestedDevices(requests: readonly DeviceRequest[]): ContainerDevice[] {
  return requests.map((r) => {
    let st;
    try {
      st = statSync(r.host);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new PocError(`--device ${r.host}: no such device on the host`);
      throw wrapError(`--device ${r.host}`, err);
    }
    const node = nodeOf(st, r.container);
    if (!node) throw new PocError(`--device ${r.host}: not a character or block device`);
    return { ...node, access: r.access };
  });
}

/** Every device node under /dev (its subdirectories too, but not the container's own: pts, shm, mqueue). */
export function hostDevices(dir = '/dev'): ContainerDevice[] {
  const out: ContainerDevice[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out; // a directory gone meanwhile
  }
  for (const name of names) {
    const path = join(dir, name);
    // The console and /dev/ptmx are the container's own (its terminal; a link into its devpts, as runc makes it).
    if (dir === '/dev' && (SKIPPED.has(name) || name === 'console' || name === 'ptmx')) continue;
    let st;
    try {
      // Not followed: a link (/dev/stdin, /dev/core) would name a node twice or one outside /dev.
      st = lstatSync(path, { throwIfNoEntry: false });
    } catch {
      continue;
    }
    if (!st) continue;
    if (st.isDirectory()) {
      out.push(...hostDevices(path));
      continue;
    }
    const node = nodeOf(st, path);
    if (node) out.push(node);
  }
  return out;
}

/** --privileged's nodes and --device's together; a --device's path wins over the host's node there. */
export function containerDevices(privileged: boolean, requests: readonly DeviceRequest[]): ContainerDevice[] {
  const requested = requestedDevices(requests);
  const taken = new Set(requested.map((d) => d.path));
  return [...(privileged ? hostDevices().filter((d) => !taken.has(d.path)) : []), ...requested];
}
