import { closeSync, constants, openSync, readSync, unlinkSync } from 'node:fs';
import { PocError, errnoCode, wrapError } from '../errors.js';
import { runHooks } from './hooks.js';
import { isSameLiveProcess, sleepMs } from './proc.js';
import { containerStatus, ociState } from './status.js';
import type { RuntimeContext } from './context.js';

/** pocrun start: releases the init blocked on exec.fifo, exactly once, then runs poststart hooks. */
export function startContainer(ctx: RuntimeContext, id: string): void {
  const unlock = ctx.store.lock(id);
  try {
    const record = ctx.store.read(id);
    const status = containerStatus(ctx.store, record, ctx.cgroups);
    if (status !== 'created') throw new PocError(`cannot start container "${id}": it is ${status}, not created`);
    const fifo = ctx.store.fifoPath(id);
    let fd: number;
    try {
      // Non-blocking: if the init died, a blocking open would wait forever for a writer.
      fd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw wrapError(`start container "${id}": open exec.fifo`, err);
    }
    try {
      const byte = Buffer.alloc(1);
      for (;;) {
        let n = 0;
        try {
          n = readSync(fd, byte, 0, 1, null);
        } catch (err) {
          if (errnoCode(err) !== 'EAGAIN') throw wrapError(`start container "${id}": read exec.fifo`, err);
        }
        if (n === 1) break;
        if (!isSameLiveProcess(record.pid, record.initStartTime)) {
          throw new PocError(`cannot start container "${id}": its init exited before start`);
        }
        sleepMs(1);
      }
    } finally {
      closeSync(fd);
    }
    unlinkSync(fifo);
    try {
      runHooks('poststart', record.hooks.poststart, ociState(record, 'running'));
    } catch (err) {
      ctx.log('warning', (err as Error).message);
    }
  } finally {
    unlock();
  }
}
