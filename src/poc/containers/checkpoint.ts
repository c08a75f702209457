/**
 * Checkpoints of a container, as docker keeps them: `<container>/checkpoints/<NAME>/`, criu's images written by
 * `pocrun checkpoint`, and restored by `poc start --checkpoint NAME` (the monitor runs `pocrun restore` in place
 * of create and start). On the bridge the network namespace is checkpointed empty (`--empty-ns network`) and,
 * at the restore, wired again by the same createRuntime hook as at a start (pocrun runs it at criu's
 * setup-namespaces step): the container keeps its address, which stays reserved for it while it is stopped.
 * Elsewhere established TCP connections are kept (`--tcp-established`).
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, PocError } from '../errors.js';
import type { RootOptions } from '../poc-root.js';
import { pocrunOk } from './runtime.js';
import { containerPaths, containerStatus, type ContainerRecord } from './container-store.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function checkpointsDir(c: ContainerRecord, opts: RootOptions = {}): string {
  return join(containerPaths(c.id, opts).dir, 'checkpoints');
}

/** The directory of checkpoint NAME; `exists`: it must (restore, rm) or must not (create) be there. */
export function checkpointDir(c: ContainerRecord, name: string, opts: RootOptions, exists: boolean): string {
  if (!NAME.test(name)) throw new PocError(`invalid checkpoint name ${JSON.stringify(name)}: letters, digits, _ . - (not first), at most 128`);
  const dir = join(checkpointsDir(c, opts), name);
  if (exists && !existsSync(join(dir, 'inventory.img'))) throw new PocError(`container ${c.name} has no checkpoint ${JSON.stringify(name)}`);
  if (!exists && existsSync(dir)) throw new PocError(`container ${c.name} has a checkpoint ${JSON.stringify(name)} already`);
  return dir;
}

/** The flags of pocrun checkpoint and restore that depend on the container's network (see the top). */
export function networkCriuFlags(c: ContainerRecord): string[] {
  return c.options.network === 'none' || c.options.network === 'host' ? ['--tcp-established'] : ['--empty-ns', 'network'];
}

/** `poc checkpoint create`: pocrun checkpoints it; without --leave-running it stops, as docker's does. */
export async function createCheckpoint(c: ContainerRecord, name: string, leaveRunning: boolean, opts: RootOptions): Promise<void> {
  if (containerStatus(c.id, opts).status !== 'running') throw new PocError(`container ${c.name} is not running`);
  if (c.options.tty) throw new PocError(`container ${c.name} has a terminal (-t): pocrun cannot restore one, so it is not checkpointed`);
  const dir = checkpointDir(c, name, opts, false);
  // A checkpoint that stops the container is a stop: the restart policy must not start it again (as poc stop).
  const stopped = containerPaths(c.id, opts).stopped;
  if (!leaveRunning) writeFileSync(stopped, '');
  try {
    await pocrunOk(['checkpoint', '--image-path', dir, '--file-locks', ...networkCriuFlags(c), ...(leaveRunning ? ['--leave-running'] : []), c.id], opts);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    if (!leaveRunning) rmSync(stopped, { force: true });
    throw err instanceof UserError ? err.wrap(`checkpoint ${name} of container ${c.name}`) : err;
  }
  if (!leaveRunning) {
    // criu ended its processes: the monitor cleans up as after any exit; wait for that, so that a start (from
    // the checkpoint) right after finds it stopped.
    const { waitMonitorGone } = await import('./start.js');
    await waitMonitorGone(c, opts, 15_000);
  }
}

export function listCheckpoints(c: ContainerRecord, opts: RootOptions = {}): string[] {
  const dir = checkpointsDir(c, opts);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => existsSync(join(dir, n, 'inventory.img'))).sort();
}

export function removeCheckpoint(c: ContainerRecord, name: string, opts: RootOptions = {}): void {
  rmSync(checkpointDir(c, name, opts, true), { recursive: true, force: true });
}
