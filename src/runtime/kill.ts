import { PocError, wrapError } from '../errors.js';
import { parseSignal } from './signals.js';
import { containerStatus } from './status.js';
import type { RuntimeContext } from './context.js';

export interface KillOptions {
  id: string;
  signal: string;
  all: boolean;
}

/** pocrun kill: a signal to the init (or, with --all, to every process of the container's cgroup). */
export function killContainer(ctx: RuntimeContext, opts: KillOptions): void {
  const signal = parseSignal(opts.signal);
  const record = ctx.store.read(opts.id);
  const status = containerStatus(ctx.store, record, ctx.cgroups);
  if (status === 'stopped' || status === 'creating') {
    throw new PocError(`cannot kill container "${opts.id}": it is ${status === 'stopped' ? 'not running' : 'still being created'}`);
  }
  try {
    if (opts.all) ctx.cgroups().killAll(record.cgroupPath, signal);
    else process.kill(record.pid, signal);
  } catch (err) {
    throw wrapError(`kill container "${opts.id}"`, err);
  }
}
