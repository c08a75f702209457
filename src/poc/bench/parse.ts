import { PocError } from '../errors.js';

/** The figures a sysbench 1.0 run prints, by key: events_per_second, mib_per_second, latency.avg, ... */
export type SysbenchFigures = Record<string, number>;

const PATTERNS: [key: string, re: RegExp][] = [
  ['events_per_second', /events per second:\s*([\d.]+)/],
  ['total_events', /total number of events:\s*([\d.]+)/],
  ['total_time', /total time:\s*([\d.]+)s/],
  ['mib_per_second', /MiB transferred \(([\d.]+) MiB\/sec\)/],
  ['reads_per_second', /reads\/s:\s*([\d.]+)/],
  ['writes_per_second', /writes\/s:\s*([\d.]+)/],
  ['fsyncs_per_second', /fsyncs\/s:\s*([\d.]+)/],
  ['read_mib_per_second', /read, MiB\/s:\s*([\d.]+)/],
  ['written_mib_per_second', /written, MiB\/s:\s*([\d.]+)/],
  ['latency.min', /Latency \(ms\):\s*\n\s*min:\s*([\d.]+)/],
  ['latency.avg', /Latency \(ms\):[\s\S]*?avg:\s*([\d.]+)/],
  ['latency.max', /Latency \(ms\):[\s\S]*?max:\s*([\d.]+)/],
  ['latency.p95', /Latency \(ms\):[\s\S]*?95th percentile:\s*([\d.]+)/],
];

/** Reads a sysbench report; a report without any known figure is an error that shows its first lines. */
export function parseSysbench(output: string): SysbenchFigures {
  const figures: SysbenchFigures = {};
  for (const [key, re] of PATTERNS) {
    const m = re.exec(output);
    if (m) figures[key] = Number(m[1]);
  }
  if (Object.keys(figures).length === 0) {
    throw new PocError(`sysbench printed no figures: ${output.trim().split('\n').slice(0, 3).join(' / ') || '(nothing)'}`);
  }
  return figures;
}
