import { stderr } from '../cli/output.js';
import { appendFileSync } from 'node:fs';
import { detectCgroups, type CgroupDriver } from '../cgroups/index.js';
// Small modules (the D-Bus calls are pocrun-systemd's, a program run only for a container that uses systemd).
import { SystemdCgroupDriver } from '../cgroups/systemd.js';
import { NoCgroupDriver } from '../cgroups/none.js';
import { systemdRunning } from '../cgroups/systemd-bus.js';
import { PocError } from '../errors.js';
import { Store, type ContainerRecord } from './store.js';

export type LogFormat = 'text' | 'json';

/** What every command gets from the global flags: where state lives and where to log. */
export class RuntimeContext {
  readonly store: Store;
  private driver?: CgroupDriver;

  constructor(
    readonly root: string,
    readonly logFile: string | undefined,
    readonly logFormat: LogFormat,
    readonly debugEnabled: boolean,
    /** --systemd-cgroup: create makes the container's cgroup a systemd scope. Later commands go by the record. */
    readonly systemdCgroup = false,
    /**
     * --rootless (src/runtime/rootless.ts): the cgroup may be out of reach. A container that asks for no
     * resources then runs without one of its own; one that asks for limits fails naming the field.
     */
    readonly rootless = false,
    /** --criu PATH (runc's global flag): the criu binary for checkpoint and restore; else criu on $PATH. */
    readonly criuPath?: string,
  ) {
    this.store = new Store(root);
  }

  /** Detected on first use: state, start and kill of a container rarely need it. */
  cgroups = (): CgroupDriver => (this.driver ??= detectCgroups());

  /**
   * The systemd driver over this host's cgroupfs driver, for create with --systemd-cgroup; a clear error where
   * systemd is not the init.
   */
  systemdCgroups(): SystemdCgroupDriver {
    // runc's rootless systemd driver asks the user's own systemd (`systemd --user`, over the user bus) for a
    // scope in its delegated subtree; pocrun-systemd speaks only to the system manager, which an unprivileged
    // caller may not ask. Said plainly rather than left to a D-Bus "access denied".
    if (this.rootless) {
      throw new PocError('--systemd-cgroup: rootless, the scope would be the user\'s systemd instance\'s (systemd --user), which pocrun does not drive yet; without the flag a rootless container runs without a cgroup of its own (cgroupfs), or with podman use --cgroup-manager cgroupfs');
    }
    if (!systemdRunning()) {
      throw new PocError('--systemd-cgroup: systemd is not running on this host (no /run/systemd/system, as sd_booted(3) checks); without the flag pocrun manages the cgroup itself (cgroupfs)');
    }
    return new SystemdCgroupDriver(this.cgroups());
  }

  /** The driver that made a container's cgroup, as its record says (engines pass --systemd-cgroup to create only). */
  cgroupsOf(record: ContainerRecord): CgroupDriver {
    // A rootless container without a cgroup of its own (create.ts) records none.
    if (!record.cgroupPath) return new NoCgroupDriver(this.cgroups, record.pid);
    return record.systemd ? new SystemdCgroupDriver(this.cgroups()) : this.cgroups();
  }

  log(level: 'debug' | 'info' | 'warning' | 'error', msg: string): void {
    if (level === 'debug' && !this.debugEnabled) return;
    if (level !== 'error' && (level !== 'debug' || !this.logFile)) stderr(`pocrun: ${level}: ${msg}\n`);
    if (!this.logFile) return;
    const time = new Date().toISOString();
    const line = this.logFormat === 'json'
      ? JSON.stringify({ level, msg, time })
      : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
    try {
      appendFileSync(this.logFile, `${line}\n`);
    } catch {
      /* a log that cannot be written must not hide the error being logged */
    }
  }
}
