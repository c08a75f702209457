import { closeSync, constants, openSync, readSync, unlinkSync } from 'node:fs';
import { PocrunError, errnoCode, wrapError } from '../errors.js';
import { runHooks } from './hooks.js';
import { sleepMs } from '../common/proc.js';
import { killContainerProcesses } from './stop.js';
import { initAlive, ociState, withLockedContainer } from './status.js';
import type { RuntimeContext } from './context.js';

/** pocrun start: releases the init blocked on exec.fifo, exactly once, then runs poststart hooks. */
export function startContainer(ctx: RuntimeContext, id: string): void {
  withLockedContainer(ctx, id, (record, status) => {
    if (status !== 'created') throw new PocrunError(`cannot start container "${id}": it is ${status}, not created`);
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
      // Polled (Bun has no poll(2) without its JIT or thread pool), first at short intervals: the init is
      // woken by this open and writes at once, and each millisecond slept here is one more of `pocrun run`.
      const pause = backoff();
      // The byte: the init passed exec.fifo and runs the startContainer hooks, then its execve.
      for (;;) {
        if (readFifo(fd, byte, id) === 1) break;
        if (!initAlive(record)) {
          // A short-lived process may have passed the fifo, run and exited between the read and this check:
          // its byte is still in the fifo then, so it is looked for once more before the init is called dead.
          if (readFifo(fd, byte, id) === 1) break;
          throw new PocrunError(`cannot start container "${id}": its init exited before start`);
        }
        pause();
      }
      unlinkSync(fifo);
      // The end of the file: the init's end closed at its execve (or it died). Poststart hooks run after the
      // user's process started (config.md), never beside the startContainer hooks.
      const pauseEnd = backoff();
      while (readFifo(fd, byte, id) !== 0) pauseEnd();
    } finally {
      closeSync(fd);
    }
    try {
      runHooks('poststart', record.hooks.poststart, ociState(record, 'running'));
    } catch (err) {
      // runtime.md 1.3.0 (lifecycle step 9): a failing poststart hook is an error, the container is stopped and
      // the lifecycle goes on at its deletion; runc kills the init likewise. The engine's delete removes it.
      killContainerProcesses(ctx, record);
      throw wrapError(`start container "${id}"`, err);
    }
  });
}

/** A sleep of 0.05 ms, then twice as long each time up to 1 ms: a short wait costs little, a long one little CPU. */
function backoff(): () => void {
  let ms = 0.05;
  return () => {
    sleepMs(ms);
    ms = Math.min(ms * 2, 1);
  };
}

/** One read of the non-blocking fifo: bytes read, 0 at the end of the file, -1 when nothing is there yet. */
function readFifo(fd: number, buf: Buffer, id: string): number {
  try {
    return readSync(fd, buf, 0, 1, null);
  } catch (err) {
    if (errnoCode(err) === 'EAGAIN') return -1;
    throw wrapError(`start container "${id}": read exec.fifo`, err);
  }
}
