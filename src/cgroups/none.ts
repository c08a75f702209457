/**
 * The "driver" of a container that has no cgroup of its own: a rootless container on cgroup v1, or on v2 without
 * a delegated cgroup, that asked for no resources (runc runs such a container in its caller's cgroups). Its
 * processes are found through the init's pid namespace instead: every process of this user whose
 * /proc/PID/ns/pid is the init's. What needs a cgroup (pause, update, stats) is a clear error.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { PocrunError } from '../errors.js';
import { signalPid } from './fs.js';
import type { CgroupDriver, CgroupStats, DeviceFilter, FreezerState, LinuxResources } from './index.js';

const WHY = 'it has no cgroup of its own (rootless: no cgroup is delegated to this user, and it asked for no resources)';

export class NoCgroupDriver implements CgroupDriver {
  constructor(
    /** The host's driver, whose version the plan and `features` report. */
    private readonly host: () => CgroupDriver,
    /** The container's init, whose pid namespace holds its processes. */
    private readonly initPid: number,
  ) {}

  get version(): 1 | 2 {
    return this.host().version;
  }

  create(): void {}
  procsFiles(): string[] {
    return [];
  }
  ownProcsFile(): string | undefined {
    return undefined;
  }
  apply(_path: string, resources: LinuxResources): void {
    if (Object.keys(resources).some((k) => k !== 'devices')) throw new PocrunError(`cannot set resources: ${WHY}`);
  }
  deviceFilter(): DeviceFilter | undefined {
    return undefined;
  }

  /** The processes in the init's pid namespace (the init itself when it has none of its own), sorted. */
  pids(): number[] {
    const ns = pidNamespace(this.initPid);
    if (!ns) return [];
    const out: number[] = [];
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (Number.isInteger(pid) && pid > 0 && pidNamespace(pid) === ns) out.push(pid);
    }
    if (ns === pidNamespace(process.pid)) return out.includes(this.initPid) ? [this.initPid] : [];
    return out.sort((a, b) => a - b);
  }

  freeze(): void {
    throw new PocrunError(`no freezer: ${WHY}`);
  }
  thaw(): void {}
  state(): FreezerState {
    return 'thawed';
  }
  stats(): CgroupStats {
    throw new PocrunError(`no statistics: ${WHY}`);
  }
  /** Signals every process of the pid namespace; without a freezer one may escape by forking, as with runc there. */
  killAll(_path: string, signal: NodeJS.Signals | number = 'SIGKILL'): void {
    for (const pid of this.pids()) signalPid(pid, signal);
  }
  destroy(): void {}
  exists(): boolean {
    return this.pids().length > 0;
  }
  dirs(): Record<string, string> {
    return {};
  }
}

function pidNamespace(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}
