import { PocrunError } from '../errors.js';
import { runHooks } from './hooks.js';
import { unmountShared } from './shared-mounts.js';
import { sleepMs } from '../common/proc.js';
import { killContainerProcesses } from './stop.js';
import { ociState, withLockedContainer } from './status.js';
import type { ContainerRecord } from './state-store.js';
import type { CgroupDriver } from '../cgroups/index.js';
import type { RuntimeContext } from './context.js';
import { trace } from './trace.js';

export interface DeleteOptions {
  id: string;
  force: boolean;
}

/**
 * pocrun delete: a stopped or created container is removed; a running or paused one only with --force.
 * `delete --force` of an unknown id succeeds quietly: engines call it during cleanup.
 */
export function deleteContainer(ctx: RuntimeContext, opts: DeleteOptions): void {
  if (!ctx.store.exists(opts.id)) {
    if (opts.force) {
      ctx.store.remove(opts.id); // a directory left by a create killed before it wrote state.json
      return;
    }
    throw new PocrunError(`container "${opts.id}" does not exist`);
  }
  // --force: a container deleted by another command while this one awaited the lock is what was asked for.
  const whenGone = opts.force ? () => {} : undefined;
  withLockedContainer(ctx, opts.id, (record, status) => {
    if ((status === 'running' || status === 'paused') && !opts.force) {
      throw new PocrunError(`cannot delete container "${opts.id}" that is not stopped: ${status} (use --force)`);
    }
    removeContainer(ctx, record, { runPoststop: status !== 'creating' });
  }, { whenGone });
}

/**
 * Kills what is left, removes the cgroup (unless `cgroupGone`: create's clean-up after a systemd scope that did not
 * start), runs poststop hooks and removes the state directory.
 */
export function removeContainer(ctx: RuntimeContext, record: ContainerRecord, opts: { runPoststop: boolean; cgroupGone?: boolean }): void {
  killContainerProcesses(ctx, record, { cgroupGone: opts.cgroupGone });
  if (record.sharedMounts) {
    try {
      unmountShared(record.sharedMounts);
    } catch (err) {
      ctx.log('warning', `container "${record.id}": ${(err as Error).message}`);
    }
  }
  try {
    if (!opts.cgroupGone) destroyCgroup(ctx.cgroupsOf(record), record.cgroupPath);
  } catch (err) {
    ctx.log('warning', `container "${record.id}": ${(err as Error).message}`);
  }
  trace('delete: cgroup removed');
  // A failing poststop hook is a warning, and the others still run (runtime.md, lifecycle step 13).
  if (opts.runPoststop) runHooks('poststop', record.hooks.poststop, ociState(record, 'stopped'), (err) => ctx.log('warning', err.message));
  ctx.store.remove(record.id);
}

/** How long delete keeps killing and removing a cgroup that is still busy before it gives up with a warning. */
export const CGROUP_REMOVE_TIMEOUT_MS = 10_000;

/**
 * Removes the cgroup; while rmdir still finds processes (killed, but still exiting on a loaded machine, or forked
 * meanwhile), kills what is left and tries again, up to CGROUP_REMOVE_TIMEOUT_MS. Engines, and poc, count on a
 * deleted container leaving no cgroup behind.
 */
export function destroyCgroup(cgroups: Pick<CgroupDriver, 'destroy' | 'exists' | 'killAll'>, path: string, timeoutMs = CGROUP_REMOVE_TIMEOUT_MS): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      cgroups.destroy(path);
      return;
    } catch (err) {
      if (Date.now() > deadline || !cgroups.exists(path)) throw err;
    }
    try {
      cgroups.killAll(path, 'SIGKILL');
    } catch {
      // frozen or half gone: the next destroy says what is wrong
    }
    sleepMs(50);
  }
}
