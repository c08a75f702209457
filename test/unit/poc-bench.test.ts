import t from 'tap';
import { benchSuite, testScript } from '../../src/poc/bench/suite.js';
import { parseSysbench } from '../../src/poc/bench/parse.js';
import { compare, median } from '../../src/poc/bench/stats.js';
import { textTable } from '../../src/poc/bench/report.js';

const GiB = 2 ** 30;
const machine = { cpus: 2, memoryBytes: 24 * GiB, diskFreeBytes: 80 * GiB };

t.test("the proof of concept's parameters, full and scaled", async (t) => {
  const full = benchSuite(machine, { full: true });
  const args = Object.fromEntries(full.map((x) => [x.name, x.run.join(' ')]));
  t.same(args, {
    cpu: 'cpu --threads=100 --cpu-max-prime=64000 --time=60 run',
    threads: 'threads --threads=64 --thread-yields=100 --thread-locks=2 --time=60 run',
    memory: 'memory --threads=100 --memory-oper=write --time=60 run',
    memstress: 'memory --memory-block-size=1M --memory-total-size=10240M --time=0 run',
    fileio: 'fileio --file-total-size=10240M --file-test-mode=rndrw --max-requests=0 --time=300 run',
  });
  const short = Object.fromEntries(benchSuite({ ...machine, memoryBytes: 2 * GiB, diskFreeBytes: 3 * GiB }, { full: false }).map((x) => [x.name, x.run.join(' ')]));
  t.match(short.cpu, /--time=5 /);
  t.match(short.memstress, /--memory-total-size=512M/, 'a quarter of the memory');
  t.match(short.fileio, /--file-total-size=307M .*--time=10/, 'a tenth of the free disk');
  t.same(benchSuite(machine, { full: false, tests: ['fileio', 'cpu'] }).map((x) => x.name), ['cpu', 'fileio']);
  t.throws(() => benchSuite(machine, { full: false, tests: ['gpu'] }), /unknown test "gpu"/);
  t.throws(() => benchSuite({ ...machine, diskFreeBytes: 5 * GiB }, { full: true }), /writes 10G twice/);
  t.match(testScript(benchSuite(machine, { full: false, tests: ['fileio'] })[0]!), /^sysbench fileio --file-total-size=1024M prepare >\/dev\/null && sysbench fileio .* run; status=\$\?; sysbench fileio --file-total-size=1024M cleanup/);
});

t.test('sysbench output is read into figures', async (t) => {
  const cpu = `CPU speed:\n    events per second: 18194.93\n\nGeneral statistics:\n    total time:                          1.0194s\n    total number of events:              18564\n\nLatency (ms):\n         min:                                    0.03\n         avg:                                    0.11\n         max:                                   69.57\n         95th percentile:                        0.04\n`;
  t.same(parseSysbench(cpu), { events_per_second: 18194.93, total_events: 18564, total_time: 1.0194, 'latency.min': 0.03, 'latency.avg': 0.11, 'latency.max': 69.57, 'latency.p95': 0.04 });
  const fileio = `File operations:\n    reads/s:                      1247.08\n    writes/s:                     831.39\n    fsyncs/s:                     2719.33\n\nThroughput:\n    read, MiB/s:                  19.49\n    written, MiB/s:               12.99\n`;
  t.match(parseSysbench(fileio), { reads_per_second: 1247.08, writes_per_second: 831.39, fsyncs_per_second: 2719.33, read_mib_per_second: 19.49, written_mib_per_second: 12.99 });
  t.match(parseSysbench('2395.18 MiB transferred (2366.36 MiB/sec)\n'), { mib_per_second: 2366.36 });
  t.throws(() => parseSysbench('sysbench: command not found\n'), /sysbench printed no figures: sysbench: command not found/);
});

t.test('medians, paired ratios and their spread', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 2, 3]), 2.5);
  const c = compare([100, 110, 90], [99, 121, 90]);
  t.equal(c.host, 100);
  t.equal(c.container, 99);
  t.equal(c.ratio, 0.99);
  t.same(c.spread, [0.99, 1.1]);
});

t.test('the table reads each metric by its direction', async (t) => {
  const metric = (label: string, higherIsBetter: boolean, host: number[], container: number[]) =>
    ({ key: label, label, unit: '', higherIsBetter, host, container, comparison: compare(host, container) });
  const table = textTable({
    machine: { cpus: 2, memoryBytes: GiB, diskFreeBytes: GiB, cpuModel: 'x', kernel: 'Linux' }, image: 'debian', reps: 1, full: false,
    started: '', finished: '',
    tests: [{ name: 'cpu', title: 'CPU', hostCommand: '', containerCommand: '', metrics: [metric('events/s', true, [100], [98]), metric('latency avg', false, [2], [1])] }],
  });
  t.match(table, /cpu\s+events\/s\s+100\s+98\.00\s+0\.980\s+0\.98–0\.98\s+2\.0% worse/);
  t.match(table, /cpu\s+latency avg\s+2\.00\s+1\.00\s+0\.500\s+0\.50–0\.50\s+100\.0% better/);
});

t.test('report and chart from recorded results', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { markdown } = await import('../../src/poc/bench/report.js');
  const { ratioChart } = await import('../../src/poc/bench/chart.js');
  // A run recorded on the development machine (bench/results/): real sysbench figures, 3 repetitions.
  const result = JSON.parse(readFileSync(join(import.meta.dirname, '../../bench/results/poc-bench-2026-11-29/results.json'), 'utf8'));
  const md = markdown(result, 'chart.svg');
  t.match(md, /^# poc bench: a container against its host\n\n3 repetitions, host and container interleaved/);
  t.match(md, /\| cpu \| events\/s \| 544 \| 540 \| 0\.993 \| 0\.99–1\.01 \| 0\.7% worse \|/);
  t.match(md, /- CPU: .+, 2 cores/);
  const svg = await ratioChart(result);
  t.match(svg, /^<svg[^>]+width="\d+"/);
  for (const label of ['cpu: events/s', 'threads: latency avg', 'memstress: MiB/s', 'fileio: fsyncs/s', 'fileio: latency max']) {
    t.ok(svg.includes(label), `the chart labels ${label}`);
  }
  t.match(svg, /container \/ host \(1\.0 = same as the host\)/);
});
