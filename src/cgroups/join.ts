import { realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PocrunError, wrapError } from '../errors.js';
import { isDir } from './fs.js';
import type { CgroupDriver } from './index.js';

export function joinCgroupSync(procsFiles: readonly string[], pid: number): void {
  for (const file of procsFiles) {
    try {
      writeFileSync(file, String(pid));
    } catch (err) {
      throw wrapError(`join cgroup ${file}`, err);
    }
  }
}

/**
 * runc's `exec --cgroup [CONTROLLER:]PATH`: the cgroup.procs files that put an exec'd process in existing
 * sub-cgroups of the container's cgroup. PATH alone is for every hierarchy (v2 has only that one);
 * CONTROLLER:PATH for the hierarchy of that v1 controller, the others keeping the container's own cgroup.
 */
export function subCgroupProcsFiles(driver: CgroupDriver, cgroupPath: string, specs: readonly string[]): string[] {
  const subs = new Map<string, string>();
  for (const spec of specs) {
    const colon = spec.indexOf(':');
    const [controller, sub] = colon < 0 ? ['', spec] : [spec.slice(0, colon), spec.slice(colon + 1)];
    const parts = sub.split('/').filter((p) => p !== '' && p !== '.');
    if (sub.startsWith('/') || parts.length === 0 || parts.includes('..')) {
      throw new PocrunError(`exec --cgroup ${JSON.stringify(spec)}: the sub-cgroup must be a path inside the container's cgroup`);
    }
    if (controller && driver.version === 2) throw new PocrunError(`exec --cgroup ${JSON.stringify(spec)}: cgroup v2 has one hierarchy: give the path alone`);
    subs.set(controller, parts.join('/'));
  }
  const dirs = driver.dirs(cgroupPath);
  for (const controller of subs.keys()) {
    if (controller && !(controller in dirs)) throw new PocrunError(`exec --cgroup ${controller}:${subs.get(controller)}: this host has no ${controller} controller mounted`);
  }
  // One file per hierarchy: controllers that share one (cpu and cpuacct) name the same directory.
  const files = new Map<string, string>();
  for (const [controller, dir] of Object.entries(dirs)) {
    const sub = subs.get(controller) ?? subs.get('');
    const target = sub === undefined ? dir : join(dir, sub);
    if (sub !== undefined && !isDir(target)) throw new PocrunError(`exec --cgroup: the sub-cgroup ${target} does not exist`);
    const hierarchy = realpathSync(dir);
    if (!files.has(hierarchy) || subs.has(controller)) files.set(hierarchy, join(target, 'cgroup.procs'));
  }
  return [...files.values()];
}
