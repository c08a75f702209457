/**
 * Ending containers: stop (TERM, then KILL after a grace period), kill, wait, the cleanup the monitor runs when
 * a container's init exits, and rm. The monitor does the cleanup of every run that ends; stop and rm wait for
 * it, and do it themselves if the monitor is gone.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { PocError } from '../errors.js';
import { parseSignal } from '../../vocabulary/signals.js';
import { pocPaths, readJson, shortId, withLock, type RootOptions } from '../poc-root.js';
import { consoleSocketPath } from './monitor.js';
import { anonymousVolumesOf, releaseVolumes } from '../volumes/volume-store.js';
import { isMounted } from './rootfs.js';
import type { ContainerOptions } from './options.js';
import { pocrun } from './runtime.js';
import { containerLock, releaseRun, waitFor, waitMonitorGone } from './start.js';
import { containerPaths, containerStatus, isAlive, readHealth, type ContainerRecord, type ContainerStatus, type ExitState } from './container-store.js';

const MONITOR_GRACE_MS = 15_000;

export interface StopOptions extends RootOptions {
  /** Seconds between the stop signal and KILL (default: the container's --stop-timeout, or 10; -1: no KILL). */
  timeout?: number;
  /**
   * Return once the container's processes are gone, leaving the monitor's cleanup to go on (poc compose down:
   * the next service stops meanwhile, and rm waits for the cleanup). Default: wait for it.
   */
  noWaitCleanup?: boolean;
}

const DEFAULT_STOP_TIMEOUT = 10;

/**
 * poc stop, kill and rm are not undone by the restart policy: the monitor finds this file before it restarts
 * (and, for a restart already under way, kills the new run at once).
 */
function markStopped(c: ContainerRecord, opts: RootOptions): void {
  try {
    writeFileSync(containerPaths(c.id, opts).stopped, '');
  } catch {
    // removed meanwhile
  }
}

/** A monitor waiting its back-off before a restart: SIGTERM ends the wait, and the monitor with it. */
function interruptRestart(s: ContainerStatus): void {
  if (s.status !== 'restarting' || !s.run) return;
  try {
    process.kill(s.run.monitorPid, 'SIGTERM');
  } catch {
    // gone already
  }
}

/**
 * What `poc stop` does to a container (pure): the signal it sends first (--stop-signal, which create set from
 * the image's StopSignal when not given, else SIGTERM) and how long it then waits before SIGKILL (stop's -t,
 * else --stop-timeout, else 10 s; -1: for ever).
 */
export function stopPlan(options: Pick<ContainerOptions, 'stopSignal' | 'stopTimeout'>, timeout?: number): { signal: number; waitMs: number } {
  const seconds = timeout ?? options.stopTimeout ?? DEFAULT_STOP_TIMEOUT;
  return { signal: parseSignal(options.stopSignal ?? 'SIGTERM'), waitMs: seconds < 0 ? Number.MAX_SAFE_INTEGER : seconds * 1000 };
}

/** Returns false when the container was not running. */
export async function stopContainer(c: ContainerRecord, opts: StopOptions = {}): Promise<boolean> {
  const s = containerStatus(c.id, opts);
  if (s.status !== 'running' && s.status !== 'restarting') return false;
  markStopped(c, opts);
  interruptRestart(s);
  const run = s.run!;
  if (isAlive(run.pid, run.initStartTime)) {
    const plan = stopPlan(c.options, opts.timeout);
    await pocrun(['kill', c.id, String(plan.signal)], opts); // fails only if it exited meanwhile
    const gone = await waitFor(() => !isAlive(run.pid, run.initStartTime), plan.waitMs, 20);
    if (!gone) await pocrun(['kill', '--all', c.id, 'SIGKILL'], opts);
  }
  if (!opts.noWaitCleanup) await finishRun(c, opts);
  return true;
}

/** After the init is gone: wait for the monitor's cleanup, or do it if the monitor died. */
async function finishRun(c: ContainerRecord, opts: RootOptions): Promise<void> {
  if (await waitMonitorGone(c, opts, MONITOR_GRACE_MS)) {
    if (containerStatus(c.id, opts).exitUnknown) await cleanupContainer(c.id, opts);
    return;
  }
  throw new PocError(`container ${c.name} stopped, but its monitor (pid ${containerStatus(c.id, opts).run?.monitorPid}) did not finish; "poc rm -f ${c.name}" removes it`);
}

export async function killContainer(c: ContainerRecord, signal: string, opts: RootOptions = {}): Promise<void> {
  const sig = parseSignal(signal);
  const s = containerStatus(c.id, opts);
  if (s.status === 'restarting') {
    markStopped(c, opts);
    interruptRestart(s);
    return;
  }
  if (s.status !== 'running') throw new PocError(`container ${c.name} is not running`);
  markStopped(c, opts);
  const r = await pocrun(['kill', c.id, String(sig)], opts);
  if (r.code !== 0) throw new PocError(`kill container ${c.name}: ${r.stderr.trim().replace(/^pocrun: /, '')}`);
}

/** `poc wait --condition`: docker's (not-running, next-exit, removed) and podman's (running, healthy, unhealthy). */
export const WAIT_CONDITIONS = ['not-running', 'next-exit', 'removed', 'running', 'healthy', 'unhealthy'] as const;
export type WaitCondition = (typeof WAIT_CONDITIONS)[number];

/**
 * Waits until the condition holds: by default until the container has exited (and its cleanup is done, and no
 * restart is coming). Returns its exit code for the exit conditions (-1 if unknown), and -1 for the others, as
 * podman prints it. A health condition on a container without a health check, or that exits first, is an error.
 */
export async function waitContainer(c: ContainerRecord, opts: RootOptions = {}, condition: WaitCondition = 'not-running'): Promise<number> {
  const paths = containerPaths(c.id, opts);
  let exit: ExitState | undefined;
  const firstExit = containerStatus(c.id, opts).exit?.finishedAt;
  if ((condition === 'healthy' || condition === 'unhealthy') && !c.healthcheck) throw new PocError(`container ${c.name} has no health check: it never becomes ${condition}`);
  let failure: string | undefined;
  await waitFor(() => {
    if (!existsSync(paths.record)) return true; // removed (--rm)
    if (condition === 'removed') return false;
    const s = containerStatus(c.id, opts);
    if (s.exit) exit = s.exit;
    const over = s.status === 'exited' && !s.monitorAlive;
    switch (condition) {
      case 'not-running':
        return over;
      case 'next-exit':
        return s.exit !== undefined && s.exit.finishedAt !== firstExit;
      case 'running':
        if (over) failure = `container ${c.name} exited (${s.exit?.exitCode ?? 'unknown'}) before it was running`;
        return over || s.status === 'running';
      default:
        if (over) failure = `container ${c.name} exited (${s.exit?.exitCode ?? 'unknown'}) before it was ${condition}`;
        return over || (s.status === 'running' && readHealth(c.id, opts)?.Status === condition);
    }
  }, Number.MAX_SAFE_INTEGER, 20);
  if (failure) throw new PocError(failure);
  return condition === 'not-running' || condition === 'next-exit' || condition === 'removed' ? (exit?.exitCode ?? -1) : -1;
}

/**
 * The monitor's exit command (`poc cleanup ID`): the runtime's state (whose poststop hook tears the network
 * down), the network again in case the hook could not run, the mount; and for --rm the whole container.
 */
export async function cleanupContainer(id: string, opts: RootOptions = {}): Promise<void> {
  const paths = containerPaths(id, opts);
  if (!existsSync(paths.record)) return;
  await withLock(
    containerLock(id),
    async () => {
      if (!existsSync(paths.record)) return; // removed meanwhile
      const c = readJson<ContainerRecord>(paths.record);
      const now = containerStatus(id, opts);
      if (now.status === 'running' && now.pid) return; // started again meanwhile: that run's monitor cleans up
      if (c.options.autoRemove) {
        await removeFiles(c, opts);
        await releaseVolumes(anonymousVolumesOf(c), opts, c.id); // --rm takes the anonymous volumes along, as docker's
      } else await releaseRun(c, opts);
    },
    opts,
  );
}

export interface RemoveOptions extends RootOptions {
  force?: boolean;
  /** -v: the container's anonymous volumes too. */
  volumes?: boolean;
}

/** `poc rm`: refused while running unless force, which kills it first. */
export async function removeContainer(c: ContainerRecord, opts: RemoveOptions = {}): Promise<void> {
  const s = containerStatus(c.id, opts);
  if (s.status === 'running' || s.status === 'restarting') {
    if (!opts.force) throw new PocError(`container ${c.name} is ${s.status}: stop it first, or use -f`);
    markStopped(c, opts);
    interruptRestart(s);
    if (s.status === 'running') await pocrun(['kill', '--all', c.id, 'SIGKILL'], opts);
  }
  if (s.monitorAlive) await waitMonitorGone(c, opts, MONITOR_GRACE_MS);
  await withLock(
    containerLock(c.id),
    async () => {
      if (!existsSync(containerPaths(c.id, opts).record)) return; // --rm: its monitor removed it
      const now = containerStatus(c.id, opts);
      if (now.monitorAlive && now.run) {
        try {
          process.kill(now.run.monitorPid, 'SIGKILL'); // stuck: it must not write into a removed directory
        } catch {
          // gone
        }
      }
      await removeFiles(c, opts);
    },
    opts,
  );
  if (opts.volumes) await releaseVolumes(anonymousVolumesOf(c), opts, c.id);
}

/** Everything of a container: runtime state, network (and its allocation), mount, directory. Under its lock. */
async function removeFiles(c: ContainerRecord, opts: RootOptions): Promise<void> {
  const paths = containerPaths(c.id, opts);
  await releaseRun(c, opts, true);
  if (isMounted(paths.rootfs)) throw new PocError(`cannot remove container ${c.name}: its rootfs ${paths.rootfs} is still mounted`);
  rmSync(consoleSocketPath(shortId(c.id), opts), { force: true });
  if (c.options.rootless) {
    // Its diff/ may hold files of the user's other ids, which only the user namespace's root can remove.
    const { removeTree } = await import('../userns.js');
    await removeTree(paths.dir, pocPaths(opts).run);
  } else {
    rmSync(paths.dir, { recursive: true, force: true });
  }
}
