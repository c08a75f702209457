#!/usr/bin/env node
// Rootless benchmark: pocrun against `runc --rootless` and crun, all run by the same unprivileged user on the same
// bundle (runc's own `spec --rootless`: a user namespace mapping the user's uid and gid, no cgroup), in one run,
// alternating runtimes. Prints medians and the ratios to runc and crun.
//
// usage (as root): node bench/rootless.mjs [--reps N] [--also NAME=BIN] [--runtimes pocrun,crun,...]
// --also NAME=BIN measures one more pocrun binary beside them (another build: its dist/pocrun, whose directory,
// readable by the user, holds its pocrun-ts and pocrun-init), in the same run, alternating with the others.
//
// Run as root, it makes a user of its own (useradd; removed at the end), the bundle and an XDG_RUNTIME_DIR for it,
// then runs itself as that user (runuser) inside a private mount namespace where the cgroup2 mount of this hybrid
// host is hidden (crun refuses hybrid cgroups; as in bench/runtime.mjs, all three see the same pure v1 view).
// Scenarios: `run` of `true`, and create+start+wait+delete (each step timed too).
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1] || 0) || 20;
const inner = args.includes('--inner') ? args[args.indexOf('--inner') + 1] : undefined;
// --runtimes pocrun,crun: only these (profiling a change against one of them; the ratios need all three).
const only = args.includes('--runtimes') ? args[args.indexOf('--runtimes') + 1].split(',') : undefined;
const also = args.includes('--also') ? args[args.indexOf('--also') + 1].split('=') : undefined;

if (!inner) outer();
else measure(inner);

/** As root: the user, the bundle, then this script as the user; the user and its files removed at the end. */
function outer() {
  if (process.getuid() !== 0) {
    console.error('bench/rootless.mjs: run it as root (it makes the unprivileged user it measures as)');
    process.exit(1);
  }
  const user = `pocbench${process.pid}`;
  const work = mkdtempSync(join(tmpdir(), 'pocrun-bench-rootless-'));
  chmodSync(work, 0o755);
  let status = 1;
  try {
    must('useradd', ['-M', '-d', join(work, 'home'), '-s', '/bin/sh', '-U', user]);
    const uid = Number(must('id', ['-u', user]).trim());
    const gid = Number(must('id', ['-g', user]).trim());
    const runDir = join(work, 'run');
    mkdirSync(runDir, { mode: 0o700 });
    chownSync(runDir, uid, gid);
    const bundle = join(work, 'bundle');
    mkdirSync(bundle);
    must(join(top, 'bundles/make-busybox-rootfs.sh'), [join(bundle, 'rootfs')]);
    must('chown', ['-R', `${uid}:${gid}`, bundle]);
    const env = ['env', '-i', 'PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', `HOME=${work}`, `USER=${user}`, `XDG_RUNTIME_DIR=${runDir}`];
    must('runuser', ['-u', user, '--', ...env, 'runc', 'spec', '--rootless', '--bundle', bundle]);
    const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    config.process.args = ['true'];
    config.process.terminal = false;
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2));
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
      'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', 'sh',
      'runuser', '-u', user, '--', ...env, process.execPath, fileURLToPath(import.meta.url), '--inner', work, '--reps', String(reps), ...(only ? ['--runtimes', only.join(',')] : []), ...(also ? ['--also', also.join('=')] : [])], { stdio: 'inherit' });
    status = r.status ?? 1;
  } finally {
    // Whatever a failed run left: the user's processes (by pid), the user and its ranges, the files.
    const ps = spawnSync('ps', ['-u', user, '-o', 'pid='], { encoding: 'utf8' }).stdout ?? '';
    for (const pid of ps.split('\n').map(Number).filter((p) => p > 0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    spawnSync('userdel', ['-f', user]);
    rmSync(work, { recursive: true, force: true });
  }
  process.exit(status);
}

function must(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** As the user: every runtime on the bundle, alternating. */
function measure(work) {
  const bundle = join(work, 'bundle');
  const runtimes = [
    { name: 'pocrun', bin: join(top, 'dist/pocrun'), flags: [] },
    { name: 'runc', bin: 'runc', flags: ['--rootless', 'true'] },
    { name: 'crun', bin: 'crun', flags: ['--rootless', 'true'] },
    ...(also ? [{ name: also[0], bin: also[1], flags: [] }] : []),
  ].filter((r) => !only || only.includes(r.name)).filter((r) => (r.bin.startsWith('/') ? existsSync(r.bin) : spawnSync('which', [r.bin]).status === 0));
  const errFile = join(work, 'run', 'stderr');
  const call = (rt, argv) => {
    const fd = openSync(errFile, 'w');
    const r = spawnSync(rt.bin, [...rt.flags, '--root', join(work, 'run', rt.name), ...argv], { cwd: bundle, stdio: ['ignore', argv[0] === 'state' ? 'pipe' : 'ignore', fd] });
    closeSync(fd);
    if (r.status !== 0) throw new Error(`${rt.name} ${argv.join(' ')}: exit ${r.status}: ${readFileSync(errFile, 'utf8')}`);
    return r;
  };
  const time = (fn) => {
    const t0 = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const scenarios = {
    run: (rt, i) => ({ run: time(() => call(rt, ['run', '--bundle', bundle, `r${i}`])) }),
    lifecycle: (rt, i) => {
      const id = `l${i}`;
      const create = time(() => call(rt, ['create', '--bundle', bundle, id]));
      const start = time(() => call(rt, ['start', id]));
      const wait = time(() => {
        while (JSON.parse(call(rt, ['state', id]).stdout.toString()).status !== 'stopped');
      });
      const del = time(() => call(rt, ['delete', id]));
      return { create, start, wait, delete: del, 'create+start+wait+delete': create + start + wait + del };
    },
  };
  const results = {};
  for (const [scenario, fn] of Object.entries(scenarios)) {
    for (let i = 0; i < reps + 2; i++) {
      for (const rt of i % 2 ? [...runtimes].reverse() : runtimes) {
        const m = fn(rt, i);
        if (i < 2) continue; // warm-up: page cache, the helpers' first start
        for (const [k, v] of Object.entries(m)) ((results[k] ??= {})[rt.name] ??= []).push(v);
      }
    }
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const version = (rt) => (spawnSync(rt.bin, ['--version'], { encoding: 'utf8' }).stdout ?? '').split('\n')[0];
  console.log(`rootless, as uid ${process.getuid()}; ${reps} repetitions, runtimes alternating; medians in ms`);
  for (const rt of runtimes) console.log(`  ${rt.name}: ${version(rt)}`);
  const names = runtimes.map((r) => r.name);
  const header = ['metric', ...names, ...names.filter((n) => n !== 'pocrun').map((n) => `pocrun/${n}`)];
  const rows = Object.entries(results).map(([metric, byRt]) => {
    const med = Object.fromEntries(names.map((n) => [n, median(byRt[n])]));
    return [metric, ...names.map((n) => med[n].toFixed(1)), ...names.filter((n) => n !== 'pocrun').map((n) => (med.pocrun / med[n]).toFixed(2))];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) console.log(row.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  '));
}
