/**
 * The systemd cgroup driver (`pocrun --systemd-cgroup`), as runc's and crun's: the container's cgroup is a
 * transient scope that systemd makes (StartTransientUnit, with the helper's pid in it, Delegate=yes) and stops;
 * the resources systemd has properties for are given to it as well, so that it keeps them; everything else is
 * the cgroupfs driver's work on the same cgroup (the files, the freezer, the pids, the stats), since the cgroup
 * is delegated. On cgroup v1 (a hybrid host booted with systemd), systemd makes the scope in the controllers it
 * manages and the cgroupfs driver adds the others at the same path, as runc's legacy manager does.
 */
import { PocrunError } from '../errors.js';
import type { CgroupDriver, DeviceFilter, FreezerState } from './index.js';
import { joinCgroupSync } from './join.js';
import type { LinuxDeviceCgroup, LinuxResources } from './resources.js';
import type { CgroupStats } from './stats.js';
import { setUnitProperties, startUnit, stopUnit } from './systemd-bus.js';
import { resourceProperties, scopeProperties } from './systemd-properties.js';
import { unitOfCgroupPath } from './systemd-unit.js';

export class SystemdCgroupDriver implements CgroupDriver {
  readonly version: 1 | 2;

  constructor(readonly fs: CgroupDriver) {
    this.version = fs.version;
  }

  /** The cgroupfs driver's mounts, which the container's view of /sys/fs/cgroup is made from. */
  get fsRoot(): string {
    return (this.fs as unknown as { fsRoot: string }).fsRoot;
  }

  get mounts(): Readonly<Record<string, string>> {
    return (this.fs as unknown as { mounts: Readonly<Record<string, string>> }).mounts;
  }

  /** A scope can only be made with a process in it: see startScope. */
  create(path: string): void {
    throw new PocrunError(`cgroup ${path}: a systemd scope is made with its first process (startScope)`);
  }

  /**
   * Starts the container's scope with `pid` (the helper, before it clones the init) in it and the resources
   * systemd knows, waits for systemd's job, then writes the rest to the cgroup's files. On failure no unit is left
   * (a failed start: systemd has been told to forget it, ResetFailedUnit; a failed step after it: stopped) and
   * the error says why.
   */
  startScope(path: string, opts: { id: string; slice: string; pid: number; resources: LinuxResources }): void {
    const { unit } = unitOfCgroupPath(path);
    startUnit(unit, [...scopeProperties(opts), ...resourceProperties(opts.resources, this.version)]);
    try {
      if (this.version === 1) {
        // systemd made the scope in the controllers it manages; the others (cpuset, freezer, net_cls, ...) are
        // made here and the helper joins them, at the same path.
        this.fs.create(path);
        joinCgroupSync(this.fs.procsFiles(path), opts.pid);
      }
      this.fs.apply(path, this.filesResources(opts.resources));
    } catch (err) {
      // As a failed start: no unit is left (the caller's clean-up counts on that), and the error is this one.
      try {
        this.destroy(path);
      } catch {
        /* a unit left is found by delete --force; the cause to report is the failed step */
      }
      throw err;
    }
  }

  /** `update`: the unit's properties (runtime), then the files, as runc's Set. */
  apply(path: string, resources: LinuxResources, where?: string): void {
    const { unit } = unitOfCgroupPath(path);
    setUnitProperties(unit, resourceProperties(resources, this.version));
    this.fs.apply(path, this.filesResources(resources), where);
  }

  /**
   * What the cgroupfs driver writes: every field (as runc's fs2.Set after SetUnitProperties), except, on v2, the
   * device rules, which are systemd's program (given as properties) and pocrun's filter (attached by the helper).
   */
  private filesResources(r: LinuxResources): LinuxResources {
    return this.version === 2 && r.devices ? { ...r, devices: undefined } : r;
  }

  deviceFilter(path: string, rules: readonly LinuxDeviceCgroup[]): DeviceFilter | undefined {
    return this.fs.deviceFilter(path, rules);
  }

  /** Stops the unit (systemd kills what is left and removes the cgroup), then removes any directory left. */
  destroy(path: string): void {
    const { unit } = unitOfCgroupPath(path);
    stopUnit(unit);
    this.fs.destroy(path);
  }

  procsFiles(path: string): string[] {
    return this.fs.procsFiles(path);
  }

  ownProcsFile(selfCgroup?: string): string | undefined {
    return this.fs.ownProcsFile(selfCgroup);
  }

  pids(path: string): number[] {
    return this.fs.pids(path);
  }

  freeze(path: string): void {
    this.fs.freeze(path);
  }

  thaw(path: string): void {
    this.fs.thaw(path);
  }

  state(path: string): FreezerState {
    return this.fs.state(path);
  }

  stats(path: string): CgroupStats {
    return this.fs.stats(path);
  }

  killAll(path: string, signal?: NodeJS.Signals | number): void {
    this.fs.killAll(path, signal);
  }

  exists(path: string): boolean {
    return this.fs.exists(path);
  }

  dirs(path: string): Record<string, string> {
    return this.fs.dirs(path);
  }
}
