/**
 * Cgroups: one interface, two drivers. v1 for hybrid hosts (a mount per controller under /sys/fs/cgroup), v2 for
 * a pure unified hierarchy. Paths given to a driver are cgroup paths ("/pocrun/c1"), relative to the hierarchy's
 * root (the mount point), as `resolveCgroupPath` returns them; the driver maps them onto its mounts.
 */
import { PocrunError } from '../errors.js';
import type { LinuxDeviceCgroup, LinuxResources } from './resources.js';
import type { CgroupStats } from './stats.js';
import { CgroupV1Driver } from './v1.js';
import { CgroupV2Driver } from './v2.js';

export type { LinuxResources } from './resources.js';
export type { CgroupStats } from './stats.js';
export { CgroupV1Driver } from './v1.js';
export { CgroupV2Driver } from './v2.js';
export { checkCgroupPath, readOwnCgroup, resolveCgroupPath } from './path.js';
export { parseCgroupMounts, v1MountsFrom, V1_CONTROLLERS, type CgroupMount } from '../common/cgroup-mounts.js';
import { cgroupHierarchies } from '../common/cgroup-mounts.js';

export type FreezerState = 'frozen' | 'thawed' | 'freezing';

/** A cgroup v2 device filter: the eBPF program (device-filter.ts) and the cgroup directory it is for. */
export interface DeviceFilter {
  dir: string;
  /** BPF_PROG_TYPE_CGROUP_DEVICE instructions, 8 bytes each. */
  insns: Uint8Array;
}

export interface CgroupDriver {
  readonly version: 1 | 2;
  /** Makes the cgroup (v1: in every mounted controller; cpuset.cpus/mems copied from the parent when empty), then
   * applies `resources`. On failure, the directories it made are removed again. An existing cgroup is reused. */
  create(path: string, resources?: LinuxResources): void;
  /** The cgroup.procs files a process joins the cgroup through (the C helper writes the pid). */
  procsFiles(path: string): string[];
  /** The cgroup.procs file of the cgroup this process is in, in one hierarchy (see join.ts). */
  ownProcsFile(selfCgroup?: string): string | undefined;
  /**
   * Applies resources to an existing cgroup (`update`). Only the fields that are set are written. v2 takes no
   * `devices` here: see deviceFilter. `where` names the resources' source in errors (default `config.json`),
   * which name the field as a /linux/resources pointer.
   */
  apply(path: string, resources: LinuxResources, where?: string): void;
  /**
   * v2, which has no device files: the rules (the whole list, in order) as an eBPF program for the helper to
   * attach to the cgroup, in place of the one before (src/native/device-filter.c; at create as a step of its
   * plan, at update in a mode of its own). undefined on v1, where `apply` writes them. A bad rule throws.
   */
  deviceFilter(path: string, rules: readonly LinuxDeviceCgroup[]): DeviceFilter | undefined;
  /** Pids in the cgroup and the cgroups below it, sorted. */
  pids(path: string): number[];
  /** Freezes and waits until the kernel reports it frozen; on timeout thaws again and throws. */
  freeze(path: string): void;
  /** No-op when nothing can be frozen (no freezer, no such cgroup). */
  thaw(path: string): void;
  /**
   * Whether the cgroup itself was frozen (paused), as runc reads it: frozen only through an ancestor is 'thawed',
   * and so is a missing cgroup or one without a freezer.
   */
  state(path: string): FreezerState;
  stats(path: string): CgroupStats;
  /**
   * Signals every process in the cgroup (frozen meanwhile, so none escapes by forking). A cgroup the user froze
   * stays frozen, except after SIGKILL, which leaves it thawed (v1's frozen tasks die only then).
   */
  killAll(path: string, signal?: NodeJS.Signals | number): void;
  /** Removes the cgroup and any below it (v1: in every controller), retrying briefly while processes exit. */
  destroy(path: string): void;
  /** Whether the cgroup exists (v1: in any controller). */
  exists(path: string): boolean;
  /** The cgroup's directory per v1 controller, or under "unified" for v2, as runc's state keeps cgroup_paths. */
  dirs(path: string): Record<string, string>;
}

/**
 * The driver for this host: v2 when `fsRoot` itself is a cgroup2 hierarchy (it has cgroup.controllers), v1
 * otherwise, with the controllers' mount points read from mountinfo.
 */
export function detectCgroups(fsRoot = '/sys/fs/cgroup', mountinfoFile = '/proc/self/mountinfo'): CgroupDriver {
  const h = cgroupHierarchies(fsRoot, mountinfoFile);
  if (h.version === 2) return new CgroupV2Driver(h.root);
  if (Object.keys(h.mounts).length === 0) {
    throw new PocrunError(`cgroups: neither a cgroup v2 hierarchy at ${h.root} nor cgroup v1 controllers are mounted`);
  }
  return new CgroupV1Driver(h.root, h.mounts);
}

