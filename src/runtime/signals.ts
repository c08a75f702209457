import { PocrunError } from '../errors.js';
import { SIGNALS, type SignalName } from '../vocabulary/signals.js';

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
  if (Object.hasOwn(SIGNALS, name)) return SIGNALS[name as SignalName];
  throw new PocrunError(`unknown signal ${JSON.stringify(text)}`);
}

export function signalName(n: number): string {
  for (const [name, value] of Object.entries(SIGNALS)) if (value === n) return `SIG${name}`;
  return String(n);
}
