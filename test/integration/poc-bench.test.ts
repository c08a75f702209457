import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { top } from '../helpers/runtime.js';

const POC = join(top, 'dist/poc');
const work = mkdtempSync(join(tmpdir(), 'poc-bench-it-'));
const env = { ...process.env, POC_ROOT: join(work, 'root') };
const poc = (args: string[]) => spawnSync(POC, args, { env, encoding: 'utf8', timeout: 600_000 });

t.teardown(() => {
  poc(['prune']);
  rmSync(work, { recursive: true, force: true });
});

t.test('poc bench compares a container with its host and writes the report', async (t) => {
  // An image with the host's sysbench (poc init's Debian image has it too, but needs the mirror and a minute).
  const rootfs = join(work, 'rootfs');
  t.equal(spawnSync(join(top, 'test/helpers/sysbench-rootfs.sh'), [rootfs]).status, 0);
  t.equal(spawnSync('tar', ['-C', rootfs, '-czf', join(work, 'sysbench.tar.gz'), '.']).status, 0);
  const imported = poc(['import', join(work, 'sysbench.tar.gz'), 'sysbench']);
  t.equal(imported.status, 0, imported.stderr);

  const out = join(work, 'report');
  const r = poc(['bench', '--image', 'sysbench', '--reps', '2', '--tests', 'cpu,memory,fileio', '--seconds', '1', '--out', out]);
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.match(lines[0], /^test\s+metric\s+host\s+container\s+container\/host\s+spread\s+container$/);
  for (const metric of ['events/s', 'MiB/s', 'reads/s', 'writes/s', 'fsyncs/s', 'latency avg', 'latency 95th', 'latency max']) {
    t.ok(lines.some((l) => l.includes(metric) && /\d\.\d{3}/.test(l)), `a row for ${metric} with a ratio`);
  }
  t.match(r.stderr, /\[\d+\/12\] fileio in the container \(repetition 2 of 2\)/, 'progress is shown');

  const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
  t.equal(results.reps, 2);
  t.same(results.tests.map((x: { name: string }) => x.name), ['cpu', 'memory', 'fileio']);
  for (const test of results.tests) {
    for (const m of test.metrics) {
      t.equal(m.host.length, 2, `${test.name} ${m.key}: two host figures`);
      t.ok(m.host.every((x: number) => x > 0) && m.container.every((x: number) => x > 0), `${test.name} ${m.key}: measured`);
      t.ok(m.comparison.spread[0] <= m.comparison.spread[1]);
    }
  }
  const svg = readFileSync(join(out, 'chart.svg'), 'utf8');
  t.match(svg, /^<svg/);
  t.match(svg, /cpu: events\/s/, 'the chart labels the metrics');
  const report = readFileSync(join(out, 'report.md'), 'utf8');
  t.match(report, /!\[container\/host ratio per metric\]\(chart\.svg\)/);
  t.match(report, /\| fileio \| reads\/s \|/);
  t.match(report, /## Machine/);
  t.match(report, /sysbench cpu --threads=100 --cpu-max-prime=64000 --time=1 run/);

  // Nothing of the runs is left: no containers, no host scratch directory.
  const ps = poc(['ps', '-a', '-q']);
  t.equal(ps.stdout.trim(), '', 'every bench container was removed');
  t.notOk(existsSync(join(work, 'root', 'tmp')) && readdirSync(join(work, 'root', 'tmp')).length > 0, 'host scratch removed');
});

t.test('bench refuses bad input clearly', async (t) => {
  const cases: [string[], RegExp][] = [
    [['bench', '--tests', 'cpu,gpu'], /unknown test "gpu"/],
    [['bench', '--reps', '0', '--image', 'sysbench'], /--reps must be a positive integer/],
    [['bench', '--image', 'nosuchimage'], /nosuchimage/],
  ];
  for (const [args, re] of cases) {
    const r = poc(args);
    t.not(r.status, 0, args.join(' '));
    t.match(r.stderr, re);
  }
});
