#!/usr/bin/env node
// The cost of poc's default seccomp profile: the same syscall-heavy workloads in a poc container with the default
// profile and with --security-opt seccomp=unconfined, alternating (default, unconfined, default, ...) so that the
// machine's drift falls on both alike. Prints the medians side by side and their ratio (default / unconfined:
// above 1.0 for a rate means the profile costs nothing; a time ratio above 1.0 is the profile's cost).
//
// usage: node bench/seccomp.mjs [--reps N] [--image NAME] [--seconds S]
//
// A third column runs the same with a filter that allows everything (--security-opt seccomp=FILE of
// {"defaultAction":"SCMP_ACT_ALLOW"}): what having any filter at all costs, apart from the profile's rules.
//
// The workloads (each in its own container, through dist/poc as a user runs it):
//   syscalls   dd bs=1 of 1 MB from /dev/zero to /dev/null: two syscalls a byte, the filter's worst case (MB/s)
//   threads    sysbench threads: sched_yield and futex in 64 threads (events/s)
//   fileio     sysbench fileio rndrw on the container's overlayfs: pread, pwrite, fsync (reads/s, writes/s)
// The image needs sysbench: `poc init` builds the Debian image with it (POC_ROOT as for poc).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const POC = join(top, 'dist/poc');
const args = process.argv.slice(2);
const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const reps = Number(flag('--reps', 5));
const image = flag('--image', 'debian');
const seconds = Number(flag('--seconds', 5));

const WORKLOADS = [
  {
    name: 'syscalls',
    script: 'dd if=/dev/zero of=/dev/null bs=1 count=1000000 2>&1 | tail -1',
    // GNU dd: "1000000 bytes (1.0 MB, 977 KiB) copied, 1.23 s, 813 kB/s"
    metrics: { 'MB/s (dd bs=1)': (out) => 1 / Number(/copied, ([\d.]+) s/.exec(out)[1]) },
  },
  {
    name: 'threads',
    script: `sysbench threads --threads=64 --thread-yields=100 --thread-locks=2 --time=${seconds} run`,
    metrics: { 'events/s': (out) => Number(/total number of events:\s+(\d+)/.exec(out)[1]) / seconds },
  },
  {
    name: 'fileio',
    script: `mkdir -p /var/tmp/b && cd /var/tmp/b && sysbench fileio --file-total-size=64M prepare >/dev/null && ` +
      `sysbench fileio --file-total-size=64M --file-test-mode=rndrw --max-requests=0 --time=${seconds} run`,
    metrics: {
      'reads/s': (out) => Number(/reads\/s:\s+([\d.]+)/.exec(out)[1]),
      'writes/s': (out) => Number(/writes\/s:\s+([\d.]+)/.exec(out)[1]),
    },
  },
];

const tmp = mkdtempSync(join(tmpdir(), 'poc-seccomp-bench-'));
const allowAll = join(tmp, 'allow-all.json');
writeFileSync(allowAll, '{"defaultAction":"SCMP_ACT_ALLOW"}\n');
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const MODES = { default: [], unconfined: ['--security-opt', 'seccomp=unconfined'], 'allow-all': ['--security-opt', `seccomp=${allowAll}`] };
const tty = process.stderr.isTTY;

function run(mode, w) {
  const r = spawnSync(POC, ['run', '--rm', '--network', 'none', ...MODES[mode], image, 'sh', '-c', w.script], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`bench/seccomp.mjs: ${w.name} (${mode}) failed, exit ${r.status}: ${(r.stderr || r.stdout).trim()}`);
    process.exit(1);
  }
  return Object.fromEntries(Object.entries(w.metrics).map(([k, f]) => [k, f(r.stdout)]));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const results = {};
for (let rep = 0; rep < reps; rep++) {
  for (const w of WORKLOADS) {
    // Alternate which goes first, so that neither always follows the other's file writes.
    const order = rep % 2 ? ['unconfined', 'allow-all', 'default'] : ['default', 'allow-all', 'unconfined'];
    for (const mode of order) {
      const line = `[${rep + 1}/${reps}] ${w.name} ${mode}`;
      process.stderr.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
      for (const [metric, value] of Object.entries(run(mode, w))) {
        ((results[`${w.name}: ${metric}`] ??= { default: [], unconfined: [], 'allow-all': [] })[mode]).push(value);
      }
    }
  }
}
if (tty) process.stderr.write('\r\x1b[K');

const kernel = spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim();
console.log(`poc's default seccomp profile against seccomp=unconfined: image ${image}, ${reps} repetitions, kernel ${kernel}; medians (higher is better)`);
console.log('');
const rows = [['workload: metric', 'default profile', 'allow-all filter', 'unconfined', 'default/unconfined', 'spread', 'allow-all/unconfined']];
const fmt = (x) => x.toPrecision(4);
for (const [name, { default: d, unconfined: u, 'allow-all': a }] of Object.entries(results)) {
  const ratios = d.map((x, i) => x / u[i]);
  rows.push([name, fmt(median(d)), fmt(median(a)), fmt(median(u)), (median(d) / median(u)).toFixed(3),
    `${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}`, (median(a) / median(u)).toFixed(3)]);
}
const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
