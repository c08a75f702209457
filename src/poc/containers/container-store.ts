/**
 * The container store: one directory per container, and the status derived from its files (never stored).
 *
 *   $POC_ROOT/containers/<id>/
 *     container.json   the record: name, image, options (written by create, never changed after)
 *     config.json      the OCI bundle's config (the bundle is this directory)
 *     rootfs/          the overlayfs mount point (mounted while the container runs)
 *     diff/ work/      the overlay's upper and work directories: the container's own changes
 *     etc/             hosts, hostname, resolv.conf, bound over the image's
 *     state.json       the last start: time, init pid, monitor pid (written by start)
 *     exit.json        the last exit: code and time (written by the monitor)
 *     container.log    the output, one CRI line each (written by the monitor)
 *     init.pid         pocrun's --pid-file
 *   <run>/runtime/      pocrun's --root (<run>: POC_ROOT, or $XDG_RUNTIME_DIR/poc rootless; poc-root.ts)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isSameLiveProcess } from '../../common/proc.js';
import { pocPaths, readJson, readRecords, resolveRef, type RootOptions } from '../poc-root.js';
import type { ContainerOptions } from './options.js';
import type { ProcessUser } from './bundle.js';
import type { HealthConfig } from './health.js';

export interface ContainerRecord {
  id: string;
  name: string;
  /** ISO 8601. */
  created: string;
  image: { id: string; name: string | null };
  hostname: string;
  /** The argv the container runs (resolved from the image and the options). */
  args: string[];
  user: ProcessUser;
  options: ContainerOptions;
  /** The health check in force: the image's HEALTHCHECK with the --health-* flags over it (absent: none). */
  healthcheck?: HealthConfig;
}

export interface RunState {
  startedAt: string;
  pid: number;
  initStartTime: string;
  monitorPid: number;
  monitorStartTime: string;
  /** Restarts by the restart policy so far (written by the monitor at every start). */
  restartCount?: number;
  /** The monitor is waiting its back-off before the next restart. */
  restarting?: boolean;
  /** The rootless network helper (pasta, slirp4netns) of this run, while it runs. */
  networkHelper?: { name: string; pid: number };
  /** What became of that helper when it died before the container (docker's State.Error in inspect). */
  networkError?: string;
}

/** docker's State.Health: written by the monitor after each check (src/native/poc-monitor.c). */
export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }>;
}

export interface ExitState {
  exitCode: number;
  finishedAt: string;
}

export interface ContainerPaths {
  dir: string;
  record: string;
  config: string;
  rootfs: string;
  upper: string;
  work: string;
  etc: string;
  state: string;
  exit: string;
  log: string;
  pidFile: string;
  /** health.json: the health check's state (with a health check only). */
  health: string;
  /** Made by poc stop, kill and rm: the restart policy does not undo them. Removed by start. */
  stopped: string;
}

/** A container's record in its directory. */
const RECORD = 'container.json';

export function containersDir(opts: RootOptions = {}): string {
  return pocPaths(opts).containers;
}

export function runtimeRoot(opts: RootOptions = {}): string {
  return join(pocPaths(opts).run, 'runtime');
}

export function containerPaths(id: string, opts: RootOptions = {}): ContainerPaths {
  const dir = join(containersDir(opts), id);
  return {
    dir,
    record: join(dir, RECORD),
    config: join(dir, 'config.json'),
    rootfs: join(dir, 'rootfs'),
    upper: join(dir, 'diff'),
    work: join(dir, 'work'),
    etc: join(dir, 'etc'),
    state: join(dir, 'state.json'),
    exit: join(dir, 'exit.json'),
    log: join(dir, 'container.log'),
    pidFile: join(dir, 'init.pid'),
    health: join(dir, 'health.json'),
    stopped: join(dir, 'stopped'),
  };
}

export function listContainers(opts: RootOptions = {}): ContainerRecord[] {
  return readRecords<ContainerRecord>(containersDir(opts), RECORD).sort((a, b) => b.created.localeCompare(a.created));
}

/** A container by name, full id or unique id prefix. */
export function resolveContainer(ref: string, opts: RootOptions = {}): ContainerRecord {
  return resolveRef('container', listContainers(opts), ref);
}

export function readRunState(id: string, opts: RootOptions = {}): RunState | undefined {
  try {
    return readJson<RunState>(containerPaths(id, opts).state);
  } catch {
    return undefined;
  }
}

export function readExitState(id: string, opts: RootOptions = {}): ExitState | undefined {
  const path = containerPaths(id, opts).exit;
  if (!existsSync(path)) return undefined;
  try {
    return readJson<ExitState>(path);
  } catch {
    return undefined;
  }
}

export function readHealth(id: string, opts: RootOptions = {}): HealthState | undefined {
  try {
    return readJson<HealthState>(containerPaths(id, opts).health);
  } catch {
    return undefined;
  }
}

/** Alive and the same process (not a zombie, not a reused pid). */
export function isAlive(pid: number, startTime: string): boolean {
  return pid > 0 && isSameLiveProcess(pid, startTime);
}

export type ContainerStatusName = 'created' | 'running' | 'restarting' | 'exited';

export interface ContainerStatus {
  status: ContainerStatusName;
  /** The init's pid while running. */
  pid?: number;
  /** The monitor is still at work (running the container, or its cleanup after the exit). */
  monitorAlive: boolean;
  run?: RunState;
  exit?: ExitState;
  /** Exited without an exit.json: the monitor died (killed, or the machine rebooted). */
  exitUnknown?: boolean;
}

/**
 * created: never started; running: the init lives; restarting: the monitor waits before it restarts the container; exited: the monitor recorded an exit, or both the init and
 * the monitor are gone.
 */
export function containerStatus(id: string, opts: RootOptions = {}): ContainerStatus {
  const run = readRunState(id, opts);
  const exit = readExitState(id, opts);
  const monitorAlive = run ? isAlive(run.monitorPid, run.monitorStartTime) : false;
  if (!run) return { status: 'created', monitorAlive: false };
  if (run.restarting && monitorAlive) return { status: 'restarting', monitorAlive, run, ...(exit ? { exit } : {}) };
  if (exit) return { status: 'exited', monitorAlive, run, exit };
  if (isAlive(run.pid, run.initStartTime)) return { status: 'running', pid: run.pid, monitorAlive, run };
  if (monitorAlive) return { status: 'running', monitorAlive, run }; // exiting: the monitor is about to record it
  return { status: 'exited', monitorAlive, run, exitUnknown: true };
}
