/**
 * `poc logs [-f] [--tail N] [-t] CONTAINER`: the container's output from its log, stdout lines to stdout and
 * stderr lines to stderr; -f follows until the container has stopped and its monitor has finished.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { stderr, stdout } from '../../common/output.js';
import { flushPending, formatLine, parseLog, splitComplete, type LogLine, type Stream } from '../containers/logs.js';
import { containerPaths, containerStatus, resolveContainer, type ContainerRecord } from '../containers/container-store.js';
import type { RootOptions } from '../poc-root.js';

export interface LogsOptions extends RootOptions {
  ref: string;
  follow: boolean;
  /** undefined: all lines. */
  tail?: number;
  timestamps: boolean;
}

function readFrom(path: string, offset: number): { text: string; end: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { text: '', end: offset };
  }
  try {
    const size = statSync(path).size;
    if (size <= offset) return { text: '', end: offset };
    const buf = Buffer.alloc(size - offset);
    const n = readSync(fd, buf, 0, buf.length, offset);
    return { text: buf.subarray(0, n).toString('utf8'), end: offset + n };
  } finally {
    closeSync(fd);
  }
}

export async function logsCommand(o: LogsOptions): Promise<number> {
  const c = resolveContainer(o.ref, o);
  await printContainerLog(c, o, (l) => (l.stream === 'stderr' ? stderr : stdout)(formatLine(l, o.timestamps)));
  return 0;
}

/**
 * A container's log line by line to `print` (the last `tail` lines, or all); with `follow`, then what it writes
 * until it has stopped and its monitor has finished. poc compose logs prints several at once, each line prefixed.
 */
export async function printContainerLog(c: ContainerRecord, o: RootOptions & Pick<LogsOptions, 'follow' | 'tail'>, print1: (l: LogLine) => void): Promise<void> {
  const paths = containerPaths(c.id, o);
  const print = (lines: LogLine[]) => lines.forEach(print1);
  const first = readFrom(paths.log, 0);
  let [complete, torn] = splitComplete(first.text);
  let offset = first.end - Buffer.byteLength(torn);
  let parsed = parseLog(complete);
  let pending: Partial<Record<Stream, LogLine>> = parsed.pending;
  print(o.tail === undefined ? parsed.lines : o.tail === 0 ? [] : parsed.lines.slice(-o.tail));
  if (o.follow) {
    for (;;) {
      const s = existsSync(paths.record) ? containerStatus(c.id, o) : undefined;
      const done = !s || (s.status !== 'running' && !s.monitorAlive);
      const next = readFrom(paths.log, offset);
      [complete, torn] = splitComplete(next.text);
      offset = next.end - Buffer.byteLength(torn);
      parsed = parseLog(complete, pending);
      pending = parsed.pending;
      print(parsed.lines);
      if (done) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  print(flushPending(pending));
}
