import { PocError } from '../errors.js';

/**
 * The Bash proof of concept's sysbench suite, as data: which sysbench commands run for each test and which
 * figures are read from their output. Pure, so that the scaling to a machine is tested without running anything.
 */

export type TestName = 'cpu' | 'threads' | 'memory' | 'memstress' | 'fileio';
export const TEST_NAMES: readonly TestName[] = ['cpu', 'threads', 'memory', 'memstress', 'fileio'];

export interface Metric {
  /** Key in the parsed sysbench output (src/poc/bench/parse.ts). */
  key: string;
  label: string;
  unit: string;
  /** Whether a larger value is better (events/s) or worse (latency). */
  higherIsBetter: boolean;
}

export interface BenchTest {
  name: TestName;
  title: string;
  /** sysbench arguments of the measured run. */
  run: string[];
  /** Arguments of the prepare and cleanup runs (fileio), in the same directory. */
  prepare?: string[];
  cleanup?: string[];
  metrics: Metric[];
}

export interface Machine {
  cpus: number;
  memoryBytes: number;
  /** Free bytes on the filesystem the fileio test writes to. */
  diskFreeBytes: number;
}

export interface SuiteOptions {
  full: boolean;
  /** Overrides every test's duration, in seconds (for quick checks). */
  seconds?: number;
  tests?: readonly string[];
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;

const LATENCY: Metric[] = [
  { key: 'latency.avg', label: 'latency avg', unit: 'ms', higherIsBetter: false },
  { key: 'latency.p95', label: 'latency 95th', unit: 'ms', higherIsBetter: false },
  { key: 'latency.max', label: 'latency max', unit: 'ms', higherIsBetter: false },
];

/**
 * The proof of concept's parameters; `--full` keeps its durations and sizes (60 s cpu and memory, 10G, 300 s
 * fileio), the default scales them to seconds per test and to the machine's memory and disk.
 */
export function benchSuite(machine: Machine, opts: SuiteOptions): BenchTest[] {
  const wanted = checkTests(opts.tests);
  const time = (full: number, short: number) => `--time=${opts.seconds ?? (opts.full ? full : short)}`;
  // Memory stress moves 10G in the original; by default a quarter of RAM, at most 10G, at least 256M.
  const stressBytes = opts.full ? 10 * GiB : clamp(machine.memoryBytes / 4, 256 * MiB, 10 * GiB);
  // fileio's files must fit with room to spare: by default a tenth of the free disk, at most 1G.
  const fileBytes = opts.full ? 10 * GiB : clamp(machine.diskFreeBytes / 10, 16 * MiB, GiB);
  if (opts.full && machine.diskFreeBytes < 2 * 10 * GiB && wanted.includes('fileio')) {
    throw new PocError(`bench --full: fileio writes 10G twice (host and container); only ${Math.floor(machine.diskFreeBytes / GiB)}G are free`);
  }
  const fileSize = `--file-total-size=${Math.floor(fileBytes / MiB)}M`;

  const all: BenchTest[] = [
    {
      name: 'cpu',
      title: 'CPU (primes)',
      run: ['cpu', '--threads=100', '--cpu-max-prime=64000', time(60, 5), 'run'],
      metrics: [{ key: 'events_per_second', label: 'events/s', unit: 'events/s', higherIsBetter: true }],
    },
    {
      name: 'threads',
      title: 'threads (yields and locks)',
      run: ['threads', '--threads=64', '--thread-yields=100', '--thread-locks=2', time(60, 5), 'run'],
      metrics: [{ key: 'total_events', label: 'events', unit: 'events', higherIsBetter: true }, LATENCY[0]!],
    },
    {
      name: 'memory',
      title: 'memory (concurrent write)',
      run: ['memory', '--threads=100', '--memory-oper=write', time(60, 5), 'run'],
      metrics: [{ key: 'mib_per_second', label: 'MiB/s', unit: 'MiB/s', higherIsBetter: true }],
    },
    {
      name: 'memstress',
      title: 'memory (stress, 1M blocks)',
      run: ['memory', '--memory-block-size=1M', `--memory-total-size=${Math.floor(stressBytes / MiB)}M`, '--time=0', 'run'],
      metrics: [{ key: 'mib_per_second', label: 'MiB/s', unit: 'MiB/s', higherIsBetter: true }],
    },
    {
      name: 'fileio',
      title: 'file I/O (random read/write)',
      prepare: ['fileio', fileSize, 'prepare'],
      run: ['fileio', fileSize, '--file-test-mode=rndrw', '--max-requests=0', time(300, 10), 'run'],
      cleanup: ['fileio', fileSize, 'cleanup'],
      metrics: [
        { key: 'reads_per_second', label: 'reads/s', unit: 'ops/s', higherIsBetter: true },
        { key: 'writes_per_second', label: 'writes/s', unit: 'ops/s', higherIsBetter: true },
        { key: 'fsyncs_per_second', label: 'fsyncs/s', unit: 'ops/s', higherIsBetter: true },
        { key: 'read_mib_per_second', label: 'read MiB/s', unit: 'MiB/s', higherIsBetter: true },
        { key: 'written_mib_per_second', label: 'written MiB/s', unit: 'MiB/s', higherIsBetter: true },
        ...LATENCY,
      ],
    },
  ];
  return all.filter((t) => wanted.includes(t.name));
}

/** The tests asked for (all when none), refusing unknown names. */
export function checkTests(tests: readonly string[] | undefined): readonly string[] {
  const wanted = tests?.length ? tests : TEST_NAMES;
  for (const t of wanted) {
    if (!TEST_NAMES.includes(t as TestName)) throw new PocError(`bench: unknown test "${t}": choose from ${TEST_NAMES.join(', ')}`);
  }
  return wanted;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** The shell line that runs a test in one directory: prepare, run, cleanup. */
export function testScript(test: BenchTest): string {
  const q = (args: string[]) => ['sysbench', ...args].join(' ');
  if (!test.prepare) return q(test.run);
  return `${q(test.prepare)} >/dev/null && ${q(test.run)}; status=$?; ${q(test.cleanup!)} >/dev/null; exit $status`;
}
