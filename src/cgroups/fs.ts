/**
 * File access for the cgroup drivers: one write(2) per value (cgroup files parse each write on its own), files
 * opened without O_CREAT (a missing file is the kernel saying "no such knob", never a file to create), errors that
 * name the cgroup, the file, the value and the errno. Synchronous on purpose: the runtime is a short-lived CLI.
 */
import { closeSync, constants, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, statSync, writeSync } from 'node:fs';
import { PocrunError, describeSystemError, errnoCode } from '../errors.js';

const MORE_ERRNO_TEXT: Record<string, string> = {
  EOPNOTSUPP: 'Operation not supported',
  ENOTSUP: 'Operation not supported',
  ERANGE: 'Numerical result out of range',
  ENODEV: 'No such device',
  ENXIO: 'No such device or address',
  EAGAIN: 'Resource temporarily unavailable',
  E2BIG: 'Argument list too long',
  EIO: 'Input/output error',
  EFAULT: 'Bad address',
};

/** "Device or resource busy", never Node's "EBUSY: resource busy or locked, write". */
export function errnoText(err: unknown): string {
  const code = errnoCode(err);
  if (code && MORE_ERRNO_TEXT[code]) return MORE_ERRNO_TEXT[code];
  const text = describeSystemError(err);
  if (code && err instanceof Error && text === err.message) return code;
  return text;
}

/** The errno code of a system error or of the system error a PocrunError wraps. */
export function causeCode(err: unknown): string | undefined {
  return errnoCode(err) ?? (err instanceof Error ? errnoCode(err.cause) : undefined);
}

function shown(value: string): string {
  return /[\n\t]/.test(value) ? JSON.stringify(value) : value;
}

/** For tests: when `writes` is an array, every write is recorded in it ("<dir>/<file>=<value>"), in order. */
export const writeTrace: { writes?: string[] } = {};

/**
 * Writes `value` into `<dir>/<file>`. `cgroup` is the cgroup path the user knows (/pocrun/c1), used in the error:
 * `cgroup /pocrun/c1: write memory.limit_in_bytes=1000: Device or resource busy`.
 */
export function writeCgroupFile(cgroup: string, dir: string, file: string, value: string): void {
  writeTrace.writes?.push(`${dir}/${file}=${value}`);
  let fd: number;
  try {
    fd = openSync(`${dir}/${file}`, constants.O_WRONLY | constants.O_TRUNC); // as runc: O_TRUNC is a no-op on cgroupfs
  } catch (err) {
    throw writeError(cgroup, file, value, err);
  }
  try {
    writeSync(fd, value);
  } catch (err) {
    throw writeError(cgroup, file, value, err);
  } finally {
    closeSync(fd);
  }
}

export function writeError(cgroup: string, file: string, value: string, err: unknown, hint = ''): PocrunError {
  return new PocrunError(`cgroup ${cgroup}: write ${file}=${shown(value)}: ${errnoText(err)}${hint}`, 1, { cause: err });
}

/** The file's text, or undefined when it does not exist. */
export function readCgroupFile(dir: string, file: string): string | undefined {
  try {
    return readFileSync(`${dir}/${file}`, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** 2^64-1, what runc reports for `max` (as a JS number, so it prints as 18446744073709552000). */
export const MAX_U64 = 2 ** 64 - 1;

/** A number file: `max` is MAX_U64, a missing or empty file is 0. */
export function readNumber(dir: string, file: string): number {
  const text = readCgroupFile(dir, file)?.trim();
  if (!text) return 0;
  if (text === 'max') return MAX_U64;
  const n = Number(text);
  return Number.isFinite(n) ? n : 0;
}

/** "key value" lines (memory.stat, cpu.stat, pids.events) → map. */
export function readKeyed(dir: string, file: string): Record<string, number> {
  const out: Record<string, number> = {};
  const text = readCgroupFile(dir, file);
  if (!text) return out;
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out[key] = value === 'max' ? MAX_U64 : Number(value);
  }
  return out;
}

/** Creates `dir` and its missing parents; returns the directories it created, outermost first. */
export function mkdirs(dir: string, stopAt: string): string[] {
  const created: string[] = [];
  const parts = dir.slice(stopAt.length).split('/').filter(Boolean);
  let cur = stopAt;
  for (const part of parts) {
    cur += '/' + part;
    try {
      mkdirSync(cur, 0o755);
      created.push(cur);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
  }
  return created;
}

/** Removes directories created by a failed `create`, innermost first, ignoring errors. */
export function undoMkdirs(created: readonly string[]): void {
  for (const dir of [...created].reverse()) {
    try {
      rmdirSync(dir);
    } catch {
      // best effort: the original error is the one to report
    }
  }
}

export function isDir(dir: string): boolean {
  return statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => `${dir}/${e.name}`);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

/** Pids in `<dir>/cgroup.procs` and in every cgroup below it. */
export function readPidsRecursive(dir: string, into: Set<number> = new Set()): Set<number> {
  const text = readCgroupFile(dir, 'cgroup.procs');
  if (text === undefined) return into;
  for (const line of text.split('\n')) {
    const pid = Number(line);
    if (line && Number.isInteger(pid) && pid > 0) into.add(pid);
  }
  for (const sub of subdirs(dir)) readPidsRecursive(sub, into);
  return into;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
export function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Backoff for "wait until the kernel is done": about 0.5 s in total. */
export const RETRY_DELAYS_MS = [1, 2, 5, 10, 20, 40, 80, 160, 200];

/**
 * Removes a cgroup directory and the cgroups below it, innermost first. rmdir fails with EBUSY while processes
 * are still leaving, so it is retried briefly. A missing directory is not an error.
 */
export function removeCgroupTree(cgroup: string, dir: string): void {
  for (const sub of subdirs(dir)) removeCgroupTree(cgroup + sub.slice(dir.length), sub);
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return;
      if (code === 'EBUSY' && attempt < RETRY_DELAYS_MS.length) {
        sleepMs(RETRY_DELAYS_MS[attempt]!);
        continue;
      }
      const left = [...readPidsRecursive(dir)];
      const why = left.length ? ` (processes still in it: ${left.join(', ')})` : '';
      throw new PocrunError(`cgroup ${cgroup}: rmdir ${dir}: ${errnoText(err)}${why}`, 1, { cause: err });
    }
  }
}

/** Sends a signal, ignoring processes that are already gone. */
export function signalPid(pid: number, signal: NodeJS.Signals | number): void {
  if (pid === process.pid) return; // never the runtime itself
  try {
    process.kill(pid, signal);
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw new PocrunError(`kill ${pid}: ${errnoText(err)}`, 1, { cause: err });
  }
}

/**
 * Signals every process of a cgroup, frozen meanwhile (when it has a freezer) so that none escapes by forking.
 * Returns whether the cgroup was frozen already (paused by the user): then it stays frozen.
 */
export function signalAllFrozen(
  cgroup: { freeze(path: string): void; thaw(path: string): void; state(path: string): string; pids(path: string): number[] },
  path: string,
  signal: NodeJS.Signals | number,
  canFreeze: boolean,
): boolean {
  const wasFrozen = canFreeze && cgroup.state(path) === 'frozen';
  let froze = false;
  if (canFreeze && !wasFrozen) {
    try {
      cgroup.freeze(path);
      froze = true;
    } catch {
      // signal anyway: a cgroup that cannot be frozen must still be killable
    }
  }
  try {
    for (const pid of cgroup.pids(path)) signalPid(pid, signal);
  } finally {
    if (froze) cgroup.thaw(path);
  }
  return wasFrozen;
}
