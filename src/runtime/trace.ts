import { readFileSync } from 'node:fs';

const enabled = process.env.POCRUN_TRACE === '1';
const killAt = process.env.POCRUN_DEBUG_KILL_AT;
let sink: ((text: string) => unknown) | undefined;

/** Where trace lines go: the command line hands in its stderr writer (the runtime does not reach up into it). */
export function traceTo(write: (text: string) => unknown): void {
  sink = write;
}

/**
 * A named point in a command. POCRUN_TRACE=1 prints, at each, the milliseconds since the Bun runtime started
 * (performance.now(): the first point shows what ran before pocrun's first line) and the process's anonymous
 * memory (where the time and the memory go); POCRUN_DEBUG_KILL_AT=<name> makes pocrun SIGKILL itself there, which
 * is how the tests prove that a runtime killed at any step leaves a state that `delete --force` recovers from.
 */
export function trace(label: string): void {
  if (enabled) sink?.(`pocrun trace ${performance.now().toFixed(2)} ms ${anonKiB()} kB: ${label}\n`);
  if (killAt !== undefined && killAt === label) process.kill(process.pid, 'SIGKILL');
}

function anonKiB(): string {
  return /RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'latin1'))?.[1] ?? '?';
}
