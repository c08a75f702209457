import { PocrunError } from '../errors.js';

/** node:os, loaded when a signal name is needed: forwarding signals (run, exec) needs none of it. */
const signalNumbers = (): Record<string, number> => process.getBuiltinModule('node:os').constants.signals as Record<string, number>;

/** Accepts what runc accepts: "TERM", "SIGTERM", "term" or "15"; real-time signals as "RTMIN+3". */
export function parseSignal(text: string): number {
  const raw = text.trim();
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n >= 1 && n <= 64) return n;
    throw new PocrunError(`invalid signal ${JSON.stringify(text)}: numbers go from 1 to 64`);
  }
  const name = raw.toUpperCase().replace(/^SIG/, '');
  const rt = /^RTMIN(?:\+(\d+))?$/.exec(name) ?? /^RTMAX(?:-(\d+))?$/.exec(name);
  if (rt) {
    const offset = Number(rt[1] ?? 0);
    const n = name.startsWith('RTMIN') ? 34 + offset : 64 - offset;
    if (n >= 34 && n <= 64) return n;
  }
  const n = signalNumbers()[`SIG${name}`];
  if (n !== undefined) return n;
  throw new PocrunError(`unknown signal ${JSON.stringify(text)}`);
}

export function signalName(n: number): string {
  for (const [name, value] of Object.entries(signalNumbers())) if (value === n) return name;
  return String(n);
}

/** The signals a command in the foreground (run, exec) passes on to its container process, as runc does. */
const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;

/**
 * Passes each of those signals to `target()` (the helper, which passes it on to the process) until the
 * returned function is called. Install it before the helper exists: a signal that came between the process's
 * start and a later install would kill pocrun and orphan the process.
 */
export function forwardSignals(target: () => { kill(signal: NodeJS.Signals): void } | undefined): () => void {
  const forward = (signal: NodeJS.Signals) => target()?.kill(signal);
  for (const s of FORWARDED) process.on(s, forward);
  return () => {
    for (const s of FORWARDED) process.off(s, forward);
  };
}
