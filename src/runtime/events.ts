import { readFileSync } from 'node:fs';
import { PocrunError } from '../errors.js';
import type { CgroupDriver } from '../cgroups/index.js';
import { containerStatus } from './status.js';
import type { RuntimeContext } from './context.js';
import { goDurationNs } from '../common/duration.js';

export interface EventsOptions {
  id: string;
  /** Print the stats once and return. */
  stats: boolean;
  /** Between two stats events, in milliseconds. */
  intervalMs: number;
}

/**
 * pocrun events, in runc's JSON shape, one object a line: `{"type":"stats","id":ID,"data":{...}}`, and
 * `{"type":"oom","id":ID}` when the kernel's OOM killer hit the container since the previous look. With `stats`
 * one stats event is printed; otherwise one every interval until SIGINT or SIGTERM, or until the container stops.
 */
export async function containerEvents(ctx: RuntimeContext, opts: EventsOptions): Promise<void> {
  const record = ctx.store.read(opts.id);
  const status = () => containerStatus(ctx, record);
  if (status() === 'stopped') throw new PocrunError(`container "${opts.id}" is not running`);
  const cgroups = ctx.cgroupsOf(record);
  // The stream ends once nobody reads it any more.
  const emit = (text: string): boolean => ctx.output.stdout(text);
  const statsEvent = () => `${JSON.stringify({ type: 'stats', id: opts.id, data: cgroups.stats(record.cgroupPath) })}\n`;
  if (opts.stats) {
    emit(statsEvent());
    return;
  }

  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const onSignal = () => stop();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let ooms = oomKills(cgroups, record.cgroupPath);
  try {
    for (;;) {
      const now = oomKills(cgroups, record.cgroupPath);
      if (now > ooms && !emit(`${JSON.stringify({ type: 'oom', id: opts.id })}\n`)) return;
      ooms = now;
      if (status() === 'stopped') return;
      let event: string | undefined;
      try {
        event = statsEvent();
      } catch (err) {
        ctx.log('warning', `events: ${(err as Error).message}`); // as runc: a failed read is logged, the stream goes on
      }
      if (event !== undefined && !emit(event)) return;
      let timer: NodeJS.Timeout | undefined;
      const ticked = await Promise.race([
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), opts.intervalMs))),
        stopped.then(() => false),
      ]);
      clearTimeout(timer);
      if (!ticked) return;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** How many processes the OOM killer took in the cgroup (v1 memory.oom_control, v2 memory.events); 0 if unknown. */
function oomKills(cgroups: CgroupDriver, path: string): number {
  const file =
    cgroups.version === 2
      ? `${(cgroups as unknown as { fsRoot: string }).fsRoot}${path}/memory.events`
      : (() => {
          const memory = (cgroups as unknown as { mounts: Record<string, string> }).mounts.memory;
          return memory ? `${memory}${path}/memory.oom_control` : undefined;
        })();
  if (!file) return 0;
  try {
    const m = /^oom_kill (\d+)$/m.exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** `--interval` in ms: a Go duration (runc's flag: "5s", "100ms", "1m30s", "1.5s"), or a bare number of seconds. */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000;
  const ns = goDurationNs(t);
  if (ns === undefined) throw new PocrunError(`invalid duration ${JSON.stringify(text)}: use a number with a unit, such as 5s or 500ms`);
  return ns / 1e6;
}
