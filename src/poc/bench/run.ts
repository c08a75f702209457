import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { UserError, PocError } from '../errors.js';
import { resolveImage, DEBIAN_IMAGE } from '../images/index.js';
import { pocPaths, type RootOptions } from '../poc-root.js';
import { parseSysbench, type SysbenchFigures } from './parse.js';
import { compare, type Comparison } from './stats.js';
import { benchSuite, checkTests, testScript, type BenchTest, type Machine, type Metric } from './suite.js';

export interface BenchOptions extends RootOptions {
  image?: string;
  reps: number;
  tests?: string[];
  full: boolean;
  seconds?: number;
  /** Called before each measurement, for the progress line. */
  onProgress?: (done: number, total: number, what: string) => void;
}

export interface MetricResult extends Metric {
  host: number[];
  container: number[];
  comparison: Comparison;
}

export interface TestResult {
  name: string;
  title: string;
  hostCommand: string;
  containerCommand: string;
  metrics: MetricResult[];
}

export interface BenchResult {
  machine: Machine & { cpuModel: string; kernel: string };
  image: string;
  reps: number;
  full: boolean;
  started: string;
  finished: string;
  tests: TestResult[];
}

/** Where the container runs its files: inside its own overlayfs rootfs, as a workload would. */
const CONTAINER_DIR = '/var/tmp/poc-bench';

/**
 * The proof of concept's experiment: each sysbench test on the host and in a container of the image,
 * interleaved (host, container, host, ...) so that the machine's drift falls on both alike, repeated.
 */
export function runBench(opts: BenchOptions): BenchResult {
  if (!Number.isInteger(opts.reps) || opts.reps < 1) throw new PocError('bench: --reps must be a positive integer');
  checkTests(opts.tests);
  if (spawnSync('sysbench', ['--version']).status !== 0) {
    throw new PocError('bench: sysbench is not installed on the host (apt-get install sysbench)');
  }
  const imageName = opts.image ?? DEBIAN_IMAGE;
  let image;
  try {
    image = resolveImage(imageName, opts);
  } catch (err) {
    if (!(err instanceof UserError) || imageName !== DEBIAN_IMAGE) throw err;
    throw new PocError(`bench: no image "${imageName}": run "poc init" first (it builds the Debian image with sysbench)`);
  }
  const paths = pocPaths(opts);
  const hostDir = join(paths.root, 'tmp', `bench-host-${process.pid}`);
  mkdirSync(hostDir, { recursive: true });
  const machine = describeMachine(hostDir);
  const suite = benchSuite(machine, { full: opts.full, seconds: opts.seconds, tests: opts.tests });
  const started = new Date().toISOString();
  const raw = new Map<string, { host: SysbenchFigures[]; container: SysbenchFigures[] }>(suite.map((t) => [t.name, { host: [], container: [] }]));
  const total = opts.reps * suite.length * 2;
  let done = 0;
  try {
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const test of suite) {
        opts.onProgress?.(done++, total, `${test.name} on the host (repetition ${rep + 1} of ${opts.reps})`);
        raw.get(test.name)!.host.push(onHost(test, hostDir));
        opts.onProgress?.(done++, total, `${test.name} in the container (repetition ${rep + 1} of ${opts.reps})`);
        raw.get(test.name)!.container.push(inContainer(test, image.id, opts));
      }
    }
    opts.onProgress?.(done, total, 'done');
  } finally {
    rmSync(hostDir, { recursive: true, force: true });
  }
  return {
    machine,
    image: image.name ?? image.id,
    reps: opts.reps,
    full: opts.full,
    started,
    finished: new Date().toISOString(),
    tests: suite.map((test) => {
      const { host, container } = raw.get(test.name)!;
      return {
        name: test.name,
        title: test.title,
        hostCommand: testScript(test),
        containerCommand: `poc run --rm --network none ${image.name ?? image.id} sh -c '${containerScript(test)}'`,
        metrics: test.metrics.map((m) => {
          const h = host.map((f) => f[m.key] ?? NaN);
          const c = container.map((f) => f[m.key] ?? NaN);
          return { ...m, host: h, container: c, comparison: compare(h, c) };
        }),
      };
    }),
  };
}

function onHost(test: BenchTest, dir: string): SysbenchFigures {
  const r = spawnSync('sh', ['-c', testScript(test)], { cwd: dir, encoding: 'utf8', maxBuffer: 16 * 2 ** 20 });
  if (r.status !== 0) throw new PocError(`bench: ${test.name} on the host failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').at(-1)}`);
  return parseSysbench(r.stdout);
}

function containerScript(test: BenchTest): string {
  return `mkdir -p ${CONTAINER_DIR} && cd ${CONTAINER_DIR} && ${testScript(test)}`;
}

/** Through poc's own command line, as a user would run it: the same binary, called by the name poc. */
function inContainer(test: BenchTest, image: string, opts: RootOptions): SysbenchFigures {
  const r = spawnSync(process.execPath, ['run', '--rm', '--network', 'none', image, 'sh', '-c', containerScript(test)], {
    encoding: 'utf8',
    maxBuffer: 16 * 2 ** 20,
    env: { ...process.env, POC_PROGRAM: 'poc', ...(opts.root ? { POC_ROOT: opts.root } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) {
    throw new PocError(`bench: ${test.name} in the container failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').at(-1)}`);
  }
  return parseSysbench(r.stdout);
}

function describeMachine(dir: string): BenchResult['machine'] {
  const fs = statfsSync(dir);
  const info = cpus();
  return {
    cpus: info.length,
    cpuModel: info[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    diskFreeBytes: fs.bavail * fs.bsize,
    kernel: spawnSync('uname', ['-sr'], { encoding: 'utf8' }).stdout.trim(),
  };
}
