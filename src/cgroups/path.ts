/** Cgroup paths: `linux.cgroupsPath` resolved once at create time, and the checks every driver call makes. */
import { readFileSync } from 'node:fs';
import { PocrunError } from '../errors.js';

/**
 * Checks a cgroup path given to a driver: absolute, no `..`, not the root cgroup. Returns it normalised
 * (no empty or `.` components, no trailing slash).
 */
export function checkCgroupPath(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new PocrunError(`cgroup path ${JSON.stringify(path)}: not absolute`);
  }
  const parts = splitPath(path, path);
  if (parts.length === 0) throw new PocrunError(`cgroup path ${JSON.stringify(path)}: the root cgroup cannot be a container's`);
  return '/' + parts.join('/');
}

function splitPath(path: string, shown: string): string[] {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) {
    throw new PocrunError(`cgroupsPath ${JSON.stringify(shown)}: ".." components are not allowed`);
  }
  return parts;
}

/**
 * `linux.cgroupsPath` → the cgroup path the drivers take. Absolute: as it is, relative to the hierarchy's root.
 * Relative: below the runtime's own cgroup (`ownCgroup`, by default read from /proc/self/cgroup). Missing:
 * `/pocrun/<id>`. The result is what to store in state.json, so later commands find the same cgroup whatever
 * cgroup they run in.
 */
export function resolveCgroupPath(
  cgroupsPath: string | undefined,
  id: string,
  ownCgroup: () => string = readOwnCgroup,
): string {
  if (cgroupsPath === undefined || cgroupsPath === '') {
    if (!id || id.includes('/') || id === '.' || id === '..') throw new PocrunError(`container id ${JSON.stringify(id)}: not usable in a cgroup path`);
    return `/pocrun/${id}`;
  }
  const parts = splitPath(cgroupsPath, cgroupsPath);
  const base = cgroupsPath.startsWith('/') ? [] : splitPath(ownCgroup(), cgroupsPath);
  if (parts.length === 0) {
    throw new PocrunError(`cgroupsPath ${JSON.stringify(cgroupsPath)}: the root cgroup cannot be a container's`);
  }
  return '/' + [...base, ...parts].join('/');
}

/**
 * The runtime's own cgroup, from /proc/self/cgroup: the unified (`0::`) entry when there is one (v2, and hybrid
 * hosts), else the `name=systemd` entry, else the first. One path for every v1 controller, so that a relative
 * cgroupsPath names the same cgroup in each of them.
 */
export function readOwnCgroup(text: string = readFileSync('/proc/self/cgroup', 'utf8')): string {
  const entries = text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^(\d+):([^:]*):(.*)$/.exec(line);
      return m ? { id: m[1]!, controllers: m[2]!, path: m[3]! } : undefined;
    })
    .filter((e) => e !== undefined);
  const pick =
    entries.find((e) => e.id === '0' && e.controllers === '') ??
    entries.find((e) => e.controllers.split(',').includes('name=systemd')) ??
    entries[0];
  if (!pick) throw new PocrunError('/proc/self/cgroup: no cgroup found for the runtime');
  return pick.path || '/';
}
