import type { BenchResult, MetricResult } from './run.js';

/** One row per metric: the medians, their ratio and the spread of the paired ratios. */
export interface Row {
  test: string;
  metric: string;
  host: string;
  container: string;
  ratio: string;
  spread: string;
  /** How the container fares against the host, from the metric's direction (latency: lower is better). */
  verdict: string;
}

export function rows(result: BenchResult): Row[] {
  return result.tests.flatMap((t) => t.metrics.map((m) => row(t.name, m)));
}

function row(test: string, m: MetricResult): Row {
  const { host, container, ratio, spread } = m.comparison;
  const better = m.higherIsBetter ? ratio : 1 / ratio;
  const pct = (better - 1) * 100;
  return {
    test,
    metric: `${m.label}`,
    host: fmt(host),
    container: fmt(container),
    ratio: ratio.toFixed(3),
    spread: `${spread[0].toFixed(2)}–${spread[1].toFixed(2)}`,
    verdict: Math.abs(pct) < 0.05 ? 'same' : `${Math.abs(pct).toFixed(1)}% ${pct > 0 ? 'better' : 'worse'}`,
  };
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '-';
  return x >= 100 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toFixed(3);
}

const HEADER: Row = {
  test: 'test', metric: 'metric', host: 'host', container: 'container', ratio: 'container/host', spread: 'spread', verdict: 'container',
};

export function textTable(result: BenchResult): string {
  const all = [HEADER, ...rows(result)];
  const keys = Object.keys(HEADER) as (keyof Row)[];
  const widths = keys.map((k) => Math.max(...all.map((r) => r[k].length)));
  return all.map((r) => keys.map((k, i) => (i >= 2 && i <= 4 ? r[k].padStart(widths[i]!) : r[k].padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

export function markdown(result: BenchResult, chart: string | undefined): string {
  const m = result.machine;
  const table = [
    `| ${Object.values(HEADER).join(' | ')} |`,
    `|${Object.keys(HEADER).map((_, i) => (i >= 2 && i <= 4 ? '---:' : '---')).join('|')}|`,
    ...rows(result).map((r) => `| ${Object.values(r).join(' | ')} |`),
  ].join('\n');
  const commands = result.tests.map((t) => `- ${t.title}\n  - host: \`${t.hostCommand}\`\n  - container: \`${t.containerCommand}\``).join('\n');
  return `# poc bench: a container against its host

${result.reps} repetition${result.reps > 1 ? 's' : ''}, host and container interleaved, ${result.full ? 'full durations and sizes' : 'short durations (use --full for the original ones)'};
${result.started} to ${result.finished}.

${chart ? `![container/host ratio per metric](${chart})\n\n` : ''}${table}

The ratio is container/host of the medians. The spread is the lowest and highest ratio of the paired repetitions
(host run i against container run i): where it straddles 1.0, the difference is within the machine's noise.
"container" reads the ratio by the metric's direction: for latency, lower is better.

## Machine

- CPU: ${m.cpuModel}, ${m.cpus} cores
- memory: ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB; free disk where fileio ran: ${(m.diskFreeBytes / 2 ** 30).toFixed(1)} GiB
- kernel: ${m.kernel}
- image: ${result.image}; the container's files live on its overlayfs rootfs

## Commands

${commands}
`;
}
