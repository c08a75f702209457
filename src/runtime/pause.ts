import { PocrunError } from '../errors.js';
import { NOT_RUNNING, withLockedContainer } from './status.js';
import type { RuntimeContext } from './context.js';

/** pocrun pause: freezes every process of the container (cgroup freezer); `state` then says "paused". */
export function pauseContainer(ctx: RuntimeContext, id: string): void {
  withLockedContainer(ctx, id, (record, status) => {
    // As runc: a created container can be paused too (its init waits on exec.fifo).
    if (status !== 'running' && status !== 'created') {
      throw new PocrunError(`cannot pause container "${id}": ${status === 'paused' ? 'it is paused already' : `${NOT_RUNNING} (it is ${status})`}`);
    }
    ctx.cgroupsOf(record).freeze(record.cgroupPath);
  });
}

/** pocrun resume: thaws a paused container. */
export function resumeContainer(ctx: RuntimeContext, id: string): void {
  withLockedContainer(ctx, id, (record, status) => {
    if (status !== 'paused') throw new PocrunError(`cannot resume container "${id}": it is ${status}, not paused`);
    const cgroups = ctx.cgroupsOf(record);
    cgroups.thaw(record.cgroupPath);
    if (cgroups.state(record.cgroupPath) !== 'thawed') throw new PocrunError(`cannot resume container "${id}": the cgroup did not thaw`);
  });
}
