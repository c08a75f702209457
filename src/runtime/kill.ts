import { PocrunError, errnoCode, wrapError } from '../errors.js';
import { parseSignal } from '../vocabulary/signals.js';
import { NOT_RUNNING, containerStatus, initAlive } from './status.js';
import type { RuntimeContext } from './context.js';

export interface KillOptions {
  id: string;
  signal: string;
  all: boolean;
}

/**
 * pocrun kill: a signal to the init (or, with --all, to every process of the container's cgroup).
 *
 * As runc (libcontainer's Signal with all): `kill --all` of a stopped container succeeds, signalling whatever is
 * left in its cgroup (processes of a container without its own pid namespace outlive the init), and nothing when
 * the cgroup is gone. containerd's CRI plugin depends on it: on every TaskExit it deletes the task with
 * WithProcessKill, which is `kill --all <id> 9` of the stopped container, and an error there leaves the container
 * RUNNING in the CRI forever. Without --all a stopped container is refused with runc's words (NOT_RUNNING).
 */
export function killContainer(ctx: RuntimeContext, opts: KillOptions): void {
  const signal = parseSignal(opts.signal);
  const record = ctx.store.read(opts.id);
  if (opts.all) {
    try {
      const cgroups = ctx.cgroupsOf(record);
      if (cgroups.exists(record.cgroupPath)) cgroups.killAll(record.cgroupPath, signal);
    } catch (err) {
      throw wrapError(`kill container "${opts.id}"`, err);
    }
    return;
  }
  const status = containerStatus(ctx, record);
  if (status === 'creating') throw new PocrunError(`cannot kill container "${opts.id}": it is still being created`);
  // A paused container's init may be gone (the status rule reads the freezer first, as runc): as runc's signal,
  // which checks the init before it signals it, that is "not running", and its pid, maybe another process's now,
  // gets nothing; the cgroup stays frozen (resume or delete --force end it).
  if (status === 'stopped' || (status === 'paused' && !initAlive(record))) {
    throw new PocrunError(`cannot kill container "${opts.id}": ${NOT_RUNNING}`);
  }
  try {
    process.kill(record.pid, signal);
    // As runc: a frozen process only dies once thawed (cgroup v1), so SIGKILL to a paused container thaws it;
    // engines stop a paused container this way (containerd's shim sends it to a paused task as to a running one).
    if (status === 'paused' && signal === 9 /* SIGKILL */) ctx.cgroupsOf(record).thaw(record.cgroupPath);
  } catch (err) {
    // The init exited since its status was read: runc's words again (its "no such process" would do as well).
    if (errnoCode(err) === 'ESRCH') throw new PocrunError(`cannot kill container "${opts.id}": ${NOT_RUNNING}`);
    throw wrapError(`kill container "${opts.id}"`, err);
  }
}
