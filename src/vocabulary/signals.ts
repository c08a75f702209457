/**
 * Linux's signals by name (without SIG), as `kill` takes them (runc's names, and Node's list on Linux). The one
 * table of signal names: parseSignal below reads it, and the native front's table is written from it
 * (scripts/gen-native.ts), with a compile-time check of each number against <signal.h>. Where two names share a
 * number, the first is the one a number is shown as.
 */
import { UserError } from '../errors.js';

export const SIGNALS = {
  HUP: 1, INT: 2, QUIT: 3, ILL: 4, TRAP: 5, ABRT: 6, IOT: 6, BUS: 7, FPE: 8, KILL: 9, USR1: 10, SEGV: 11, USR2: 12,
  PIPE: 13, ALRM: 14, TERM: 15, STKFLT: 16, CHLD: 17, CONT: 18, STOP: 19, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23,
  XCPU: 24, XFSZ: 25, VTALRM: 26, PROF: 27, WINCH: 28, IO: 29, POLL: 29, PWR: 30, SYS: 31,
} as const;

export type SignalName = keyof typeof SIGNALS;

/**
 * The signals a command in the foreground passes on to its container's process, as runc does: pocrun run and exec
 * (to the helper, whose parent stage passes them on in pocrun-init.c), poc run and exec, and poc's monitor.
 */
export const FORWARDED_SIGNALS = ['INT', 'TERM', 'HUP', 'QUIT', 'USR1', 'USR2', 'WINCH'] as const satisfies readonly SignalName[];

/**
 * Passes each forwarded signal to `target()` until the returned function is called. Install it before the target
 * exists: a signal that came between the process's start and a later install would kill this program and orphan
 * the process.
 */
export function forwardSignals(target: () => { kill(signal: NodeJS.Signals): unknown } | undefined): () => void {
  const forward = (signal: NodeJS.Signals) => target()?.kill(signal);
  for (const s of FORWARDED_SIGNALS) process.on(`SIG${s}`, forward);
  return () => {
    for (const s of FORWARDED_SIGNALS) process.off(`SIG${s}`, forward);
  };
}

/** Accepts what runc accepts: "TERM", "SIGTERM", "term" or "15"; real-time signals as "RTMIN+3". */
export function parseSignal(text: string): number {
  const raw = text.trim();
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n >= 1 && n <= 64) return n;
    throw new UserError(`invalid signal ${JSON.stringify(text)}: numbers go from 1 to 64`);
  }
  const name = raw.toUpperCase().replace(/^SIG/, '');
  const rt = /^RTMIN(?:\+(\d+))?$/.exec(name) ?? /^RTMAX(?:-(\d+))?$/.exec(name);
  if (rt) {
    const offset = Number(rt[1] ?? 0);
    const n = name.startsWith('RTMIN') ? 34 + offset : 64 - offset;
    if (n >= 34 && n <= 64) return n;
  }
  if (Object.hasOwn(SIGNALS, name)) return SIGNALS[name as SignalName];
  throw new UserError(`unknown signal ${JSON.stringify(text)}`);
}

export function signalName(n: number): string {
  for (const [name, value] of Object.entries(SIGNALS)) if (value === n) return `SIG${name}`;
  return String(n);
}
