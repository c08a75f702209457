import { PocrunError } from '../errors.js';
import { NOT_RUNNING, containerStatus } from './status.js';
import type { RuntimeContext } from './context.js';

/** pocrun pause: freezes every process of the container (cgroup freezer); `state` then says "paused". */
export function pauseContainer(ctx: RuntimeContext, id: string): void {
  const unlock = ctx.store.lock(id);
  try {
    const record = ctx.store.read(id);
    const status = containerStatus(ctx.store, record, ctx.cgroups);
    // As runc: a created container can be paused too (its init waits on exec.fifo).
    if (status !== 'running' && status !== 'created') {
      throw new PocrunError(`cannot pause container "${id}": ${status === 'paused' ? 'it is paused already' : `${NOT_RUNNING} (it is ${status})`}`);
    }
    ctx.cgroupsOf(record).freeze(record.cgroupPath);
  } finally {
    unlock();
  }
}

/** pocrun resume: thaws a paused container. */
export function resumeContainer(ctx: RuntimeContext, id: string): void {
  const unlock = ctx.store.lock(id);
  try {
    const record = ctx.store.read(id);
    const status = containerStatus(ctx.store, record, ctx.cgroups);
    if (status !== 'paused') throw new PocrunError(`cannot resume container "${id}": it is ${status}, not paused`);
    const cgroups = ctx.cgroupsOf(record);
    cgroups.thaw(record.cgroupPath);
    if (cgroups.state(record.cgroupPath) !== 'thawed') throw new PocrunError(`cannot resume container "${id}": the cgroup did not thaw`);
  } finally {
    unlock();
  }
}
