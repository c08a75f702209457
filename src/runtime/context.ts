import { appendFileSync } from 'node:fs';
import { detectCgroups, type CgroupDriver } from '../cgroups/index.js';
// Small modules (the D-Bus calls are pocrun-systemd's, a program run only for a container that uses systemd).
import { SystemdCgroupDriver } from '../cgroups/systemd.js';
import { NoCgroupDriver } from '../cgroups/none.js';
import { systemdRunning, userBusProblem } from '../common/systemd.js';
import { PocrunError } from '../errors.js';
import { Store, type ContainerRecord } from './state-store.js';

export type LogFormat = 'text' | 'json';

/**
 * Where a command's output goes: the command line hands its writers in (src/common/output.ts), so that the runtime
 * never reaches up into the CLI. Each returns false once nobody reads any more (EPIPE).
 */
export interface Output {
  stdout(text: string): boolean;
  stderr(text: string): boolean;
}

export interface RuntimeOptions {
  root: string;
  logFile?: string;
  logFormat: LogFormat;
  debug: boolean;
  /** --systemd-cgroup: create makes the container's cgroup a systemd scope. Later commands go by the record. */
  systemdCgroup?: boolean;
  /**
   * --rootless (src/runtime/rootless.ts): the cgroup may be out of reach. A container that asks for no
   * resources then runs without one of its own; one that asks for limits fails naming the field.
   */
  rootless?: boolean;
  /** --criu PATH (runc's global flag): the criu binary for checkpoint and restore; else criu on $PATH. */
  criuPath?: string;
  output: Output;
}

/** What every command gets from the global flags and the command line: where state lives, where to log and print. */
export class RuntimeContext {
  readonly store: Store;
  readonly root: string;
  readonly logFile: string | undefined;
  readonly logFormat: LogFormat;
  readonly debugEnabled: boolean;
  readonly systemdCgroup: boolean;
  readonly rootless: boolean;
  readonly criuPath: string | undefined;
  readonly output: Output;
  private driver?: CgroupDriver;

  constructor(o: RuntimeOptions) {
    this.root = o.root;
    this.logFile = o.logFile;
    this.logFormat = o.logFormat;
    this.debugEnabled = o.debug;
    this.systemdCgroup = o.systemdCgroup ?? false;
    this.rootless = o.rootless ?? false;
    this.criuPath = o.criuPath;
    this.output = o.output;
    this.store = new Store(o.root);
  }

  /** Detected on first use: state, start and kill of a container rarely need it. */
  cgroups = (): CgroupDriver => (this.driver ??= detectCgroups());

  /**
   * The systemd driver over this host's cgroupfs driver, for create with --systemd-cgroup; a clear error where
   * systemd is not the init.
   */
  systemdCgroups(): SystemdCgroupDriver {
    if (!systemdRunning()) {
      throw new PocrunError('--systemd-cgroup: systemd is not running on this host (no /run/systemd/system, as sd_booted(3) checks); without the flag pocrun manages the cgroup itself (cgroupfs)');
    }
    const driver = new SystemdCgroupDriver(this.cgroups());
    if (this.rootless) {
      // As runc's rootless driver: the scope is asked of the user's own systemd (`systemd --user`, on the user's
      // bus), in the subtree logind delegates to it, which only cgroup v2 has.
      if (driver.version !== 2) throw new PocrunError('--systemd-cgroup: rootless, a systemd scope needs cgroup v2 (the user\'s delegated subtree); on cgroup v1 run without the flag');
      const noBus = userBusProblem(process.env);
      if (noBus) {
        throw new PocrunError(`--systemd-cgroup: rootless, the user's systemd (systemd --user) is asked on its bus, and there is none (${noBus}): log in, or have root run "loginctl enable-linger ${process.env.USER ?? 'USER'}"`);
      }
    }
    return driver;
  }

  /** The driver that made a container's cgroup, as its record says (engines pass --systemd-cgroup to create only). */
  cgroupsOf(record: ContainerRecord): CgroupDriver {
    // A rootless container without a cgroup of its own (create-container.ts) records none.
    if (!record.cgroupPath) return new NoCgroupDriver(this.cgroups, record.pid);
    return record.systemd ? new SystemdCgroupDriver(this.cgroups()) : this.cgroups();
  }

  log(level: 'debug' | 'info' | 'warning' | 'error', msg: string): void {
    if (level === 'debug' && !this.debugEnabled) return;
    if (level !== 'error' && (level !== 'debug' || !this.logFile)) this.output.stderr(`pocrun: ${level}: ${msg}\n`);
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
