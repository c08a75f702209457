/**
 * `poc stats [--no-stream] [--format json] [CONTAINER...]`: CPU %, memory usage/limit, network and block I/O,
 * pids, as the runtime reports each container's cgroup (`pocrun events --interval`: one pocrun per container for
 * the whole watch, streaming runc's events JSON) and the network namespace counts; refreshed in place every second.
 */
import { isatty } from 'node:tty';
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { isRootless } from '../rootless.js';
import { spawnPocrun } from '../containers/runtime.js';
import type { Subprocess } from '../spawn.js';
import { containerStatus, listContainers, resolveContainer, type ContainerRecord } from '../containers/container-store.js';
import { shortId, type RootOptions } from '../poc-root.js';
import { binarySize, humanSize, table } from './format.js';

export interface StatsOptions extends RootOptions {
  refs: string[];
  stream: boolean;
  format: 'table' | 'json';
}

export interface Sample {
  cpuNs: number;
  at: number;
  memory: number;
  limit: number;
  pids: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
}

/** /proc/<pid>/net/dev: bytes received and sent on every interface but lo (pure). */
export function parseNetDev(text: string): { rx: number; tx: number } {
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n').slice(2)) {
    const [name, rest] = line.split(':');
    if (!rest || name!.trim() === 'lo') continue;
    const f = rest.trim().split(/\s+/).map(Number);
    rx += f[0] ?? 0;
    tx += f[8] ?? 0;
  }
  return { rx, tx };
}

/** The part of `pocrun events --stats`'s data (runc's events JSON) that poc shows. */
interface RuntimeStats {
  cpu?: { usage?: { total?: number } };
  memory?: { usage?: { usage?: number; limit?: number } };
  pids?: { current?: number };
  blkio?: { ioServiceBytesRecursive?: { op?: string; value?: number }[] };
}

/** A sample from one stats event of the runtime, taken at `at` (when it came). */
function sampleOf(st: RuntimeStats, c: ContainerRecord, pid: number | undefined, at: number): Sample {
  let net = { rx: 0, tx: 0 };
  if (pid && c.options.network !== 'host') {
    try {
      net = parseNetDev(readFileSync(`/proc/${pid}/net/dev`, 'utf8'));
    } catch {
      // exited meanwhile
    }
  }
  const io = st.blkio?.ioServiceBytesRecursive ?? [];
  const sum = (op: string) => io.filter((e) => e.op?.toLowerCase() === op).reduce((a, e) => a + (e.value ?? 0), 0);
  const rawLimit = st.memory?.usage?.limit ?? 0;
  return {
    cpuNs: st.cpu?.usage?.total ?? 0,
    at,
    memory: st.memory?.usage?.usage ?? 0,
    limit: rawLimit > 0 && rawLimit < totalmem() ? rawLimit : totalmem(),
    pids: st.pids?.current ?? 0,
    netRx: net.rx,
    netTx: net.tx,
    blockRead: sum('read'),
    blockWrite: sum('write'),
  };
}

/** One container watched through `pocrun events --interval`: its two latest samples, and how many came. */
interface Watch {
  previous?: Sample;
  latest?: Sample;
  count: number;
  /** The stream ended: the container stopped, or the watch was stopped. */
  over: boolean;
  proc: Subprocess;
}

function watchContainer(c: ContainerRecord, pid: number | undefined, intervalMs: number, opts: RootOptions): Watch {
  const proc = spawnPocrun(['events', '--interval', `${intervalMs}ms`, c.id], opts);
  const w: Watch = { count: 0, over: false, proc };
  void (async () => {
    const decoder = new TextDecoder();
    let text = '';
    for await (const chunk of proc.stdout) {
      text += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = text.indexOf('\n')) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        let event: { type?: string; data?: RuntimeStats };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          continue;
        }
        if (event.type !== 'stats' || !event.data) continue;
        w.previous = w.latest;
        w.latest = sampleOf(event.data, c, pid, Number(process.hrtime.bigint()));
        w.count++;
      }
    }
  })()
    .catch(() => undefined)
    .finally(() => (w.over = true));
  return w;
}

export function cpuPercent(a: Sample, b: Sample): number {
  const wall = b.at - a.at;
  return wall > 0 ? ((b.cpuNs - a.cpuNs) / wall) * 100 : 0;
}

export async function statsCommand(o: StatsOptions): Promise<number> {
  const pick = () => {
    const all = o.refs.length > 0 ? o.refs.map((r) => resolveContainer(r, o)) : listContainers(o);
    return all.map((c) => ({ c, s: containerStatus(c.id, o) })).filter(({ s }) => o.refs.length > 0 || s.status === 'running');
  };
  if (isRootless(process.env, process.geteuid?.() ?? 0)) {
    // As podman's "stats is not supported in rootless mode without cgroups v2": the figures are the cgroup's, and a
    // rootless container has one only where one is delegated to the user (rootless.ts).
    const none = pick().find(({ c }) => !c.options.cgroup);
    if (none) {
      throw new PocError(
        `stats reads each container's cgroup, and the rootless container ${none.c.name} has none of its own (it gets one only from a cgroup delegated to the user: its systemd's scope, or --cgroup-parent with the cgroupfs manager)`,
      );
    }
  }
  // Each running container is watched by one `pocrun events` (every second; every half second for --no-stream),
  // and the list drawn from each one's two latest samples: at first once two have come (CPU % needs two), then
  // every second.
  const intervalMs = o.stream ? 1000 : 500;
  const watches = new Map<string, Watch>();
  const follow = () => {
    const shown = pick();
    const running = new Set(shown.filter(({ s }) => s.status === 'running').map(({ c }) => c.id));
    for (const { c, s } of shown) if (running.has(c.id) && !watches.has(c.id)) watches.set(c.id, watchContainer(c, s.pid, intervalMs, o));
    for (const [id, w] of watches) {
      if (running.has(id)) continue;
      w.proc.kill();
      watches.delete(id);
    }
    return shown;
  };
  try {
    let shown = follow();
    // Two samples of each, or the end of its stream (it stopped meanwhile); 5 s at most.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && [...watches.values()].some((w) => w.count < 2 && !w.over)) await new Promise((r) => setTimeout(r, 20));
    for (;;) {
      const rows = shown.map(({ c, s }) => {
        const w = s.status === 'running' ? watches.get(c.id) : undefined;
        const b = w?.latest;
        const a = w?.previous;
        return { c, b, cpu: a && b ? cpuPercent(a, b) : 0 };
      });
      if (o.format === 'json') {
        const out = rows.map(({ c, b, cpu }) => ({
          id: c.id,
          name: c.name,
          cpuPercent: Number(cpu.toFixed(2)),
          memoryUsage: b?.memory ?? 0,
          memoryLimit: b?.limit ?? 0,
          pids: b?.pids ?? 0,
          netRx: b?.netRx ?? 0,
          netTx: b?.netTx ?? 0,
          blockRead: b?.blockRead ?? 0,
          blockWrite: b?.blockWrite ?? 0,
        }));
        stdout(`${JSON.stringify(out, null, 2)}\n`);
      } else {
        const text = table(
          ['CONTAINER ID', 'NAME', 'CPU %', 'MEM USAGE / LIMIT', 'MEM %', 'NET I/O', 'BLOCK I/O', 'PIDS'],
          rows.map(({ c, b, cpu }) =>
            b
              ? [
                  shortId(c.id), c.name, `${cpu.toFixed(2)}%`, `${binarySize(b.memory)} / ${binarySize(b.limit)}`,
                  `${((b.memory / b.limit) * 100).toFixed(2)}%`, `${humanSize(b.netRx)} / ${humanSize(b.netTx)}`,
                  `${humanSize(b.blockRead)} / ${humanSize(b.blockWrite)}`, String(b.pids),
                ]
              : [shortId(c.id), c.name, '--', '-- / --', '--', '-- / --', '-- / --', '--'],
          ),
        );
        stdout(o.stream && isatty(1) ? `\x1b[2J\x1b[H${text}` : text);
      }
      if (!o.stream) return 0;
      await new Promise((r) => setTimeout(r, 1000));
      shown = follow();
    }
  } finally {
    for (const w of watches.values()) w.proc.kill();
  }
}
