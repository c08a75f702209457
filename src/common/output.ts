import { writeSync } from 'node:fs';
import { errnoCode } from '../errors.js';

/**
 * Writes straight to fd 1 or 2. In the Bun binary, touching process.stdout builds a stream and costs ~16 ms
 * per command: more than all of `pocrun state`'s own work. False once nobody reads any more (EPIPE): a stream
 * such as `pocrun events` ends then.
 */
function write(fd: 1 | 2, text: string): boolean {
  let buf = Buffer.from(text);
  while (buf.length > 0) {
    try {
      buf = buf.subarray(writeSync(fd, buf));
    } catch (err) {
      if (errnoCode(err) === 'EAGAIN') continue; // a non-blocking pipe that is full: the reader will drain it
      if (errnoCode(err) === 'EPIPE') return false;
      throw err;
    }
  }
  return true;
}

export const stdout = (text: string): boolean => write(1, text);
export const stderr = (text: string): boolean => write(2, text);
