/** Processes as /proc shows them, for pocrun and poc alike: identity by start time, waiting without an event loop. */
import { readFileSync } from 'node:fs';

export interface ProcStat {
  /** R, S, D, Z, T, X, ... */
  state: string;
  /** Field 22 of /proc/<pid>/stat: clock ticks after boot; tells a reused pid from the one we started. */
  startTime: string;
}

export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses: the fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0]!, startTime: fields[19]! };
}

/** Alive and the same process: not gone, not a zombie, not a reused pid. */
export function isSameLiveProcess(pid: number, startTime: string): boolean {
  const stat = readProcStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/** Sleeps without an event loop: the runtime's commands are short and synchronous. */
export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** SIGKILL, for cleaning up: a process that is already gone is what was wanted. */
export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}
