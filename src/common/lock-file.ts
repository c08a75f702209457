import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { errnoCode } from '../errors.js';
import { lockHolder } from '../vocabulary/state-record.js';
import { isSameLiveProcess, readProcStat } from './proc.js';

/**
 * The lock-file rule pocrun's state directories (runtime/state-store.ts; the native front takes it the same way)
 * and poc's root (poc/poc-root.ts) share. Node has no flock, so a lock is a file created with O_EXCL holding its
 * holder's pid and start time (lockHolder); a lock whose holder is gone, a zombie, or whose pid now belongs to a
 * process started at another time, is stale and may be taken over. How long to wait, and how, is the caller's.
 */

/** Takes the lock: true; false when someone holds it. Other failures (ENOENT: no directory) are thrown. */
export function tryLockFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, lockHolder(process.pid, readProcStat(process.pid)?.startTime ?? ''));
  } finally {
    closeSync(fd);
  }
  return true;
}

/** The holder's text ('' when the lock went meanwhile). */
export function lockFileHolder(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** "pid starttime": stale when that process is gone, a zombie, or the pid now another process's. */
export function isStaleHolder(holder: string): boolean {
  const [pidText, start = ''] = holder.trim().split(' ');
  const pid = Number(pidText);
  return !Number.isInteger(pid) || pid <= 0 || !isSameLiveProcess(pid, start);
}

/**
 * Removes a lock whose holder `holder` is stale, unless it changed hands meanwhile (re-read right before the
 * unlink, so that a lock another waiter took over is left alone). True when the caller may try again at once.
 */
export function takeOverStale(path: string, holder: string): boolean {
  if (holder === '' || !isStaleHolder(holder)) return holder === '';
  try {
    if (readFileSync(path, 'utf8') === holder) unlinkSync(path);
  } catch {
    // gone already
  }
  return true;
}
