#!/usr/bin/env node
// Runtime benchmark: pocrun against runc (and crun) on the same busybox bundle, in one run, alternating runtimes
// so that the machine's drift falls on all of them alike. Prints medians and ratios to runc (and crun).
//
// usage: node bench/runtime.mjs [--reps N] [--only run,lifecycle,state,many,engine] [--guest] [--systemd] [--also NAME=BIN]
//
// many: 50 containers in sequence and 50 at once (`run` of `true` each), wall time and peak memory of the whole:
// the runtime processes run in a fresh memory cgroup, whose max usage is read afterwards.
// engine: `poc run --rm busybox true` against `podman run --rm` of the same image with runc (network none on both,
// podman with a private store), and the resident memory of a detached container's monitor.
//
// crun refuses hybrid cgroups: every runtime is measured inside `unshare -m --propagation private` with
// /sys/fs/cgroup/unified unmounted (a pure v1 view), so the three see the same cgroups.
//
// --guest: the same, run by itself in the cgroup v2 test guest (scripts/guest/run.sh: Debian 12, systemd, pure
// cgroup v2, runc 1.1.5 and crun 1.8.1), where crun is at home. The guest is emulated (TCG), which slows
// everything 5-20 times and not evenly: only the ratios are printed there. Default there: run, lifecycle, state
// with 10 repetitions. --also NAME=BIN measures one more runtime binary beside them (another build of pocrun).
//
// --systemd (with --guest, where systemd is the init): every runtime with --systemd-cgroup, each making its default
// scope in system.slice (pocrun-<id>, runc-<id>, crun-<id>.scope) over D-Bus and stopping it at delete.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const inGuest = process.env.POC_GUEST === '1';
const reps = Number(args[args.indexOf('--reps') + 1] || 0) || (inGuest ? 10 : 30);
const only = args.includes('--only')
  ? args[args.indexOf('--only') + 1].split(',')
  : inGuest ? ['run', 'lifecycle', 'state'] : ['run', 'lifecycle', 'state', 'many', 'engine'];
const also = args.includes('--also') ? args[args.indexOf('--also') + 1].split('=') : undefined;
const MANY = 50;
const systemd = args.includes('--systemd');
/** The global flags every runtime gets: --systemd-cgroup with --systemd. */
const globalFlags = systemd ? ['--systemd-cgroup'] : [];

if (args.includes('--guest') && !inGuest) {
  // Boot the guest and run this script there, with the same arguments (less --guest).
  const rest = process.argv.slice(2).filter((a) => a !== '--guest');
  const r = spawnSync(join(top, 'scripts/guest/run.sh'), ['node', 'bench/runtime.mjs', ...rest], { stdio: 'inherit', cwd: top });
  process.exit(r.status ?? 1);
}

if (systemd && !args.includes('--guest') && !existsSync('/run/systemd/system')) {
  console.error('bench/runtime.mjs --systemd: systemd is not the init here; add --guest to run it in the test guest');
  process.exit(1);
}

if (!inGuest && process.env.POC_BENCH_INNER !== '1') {
  // Re-run this script in a private mount namespace with the cgroup2 mount hidden.
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c',
    'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', 'sh', process.execPath, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, POC_BENCH_INNER: '1' },
  });
  process.exit(r.status ?? 1);
}

const work = mkdtempSync(join(tmpdir(), 'pocrun-bench-'));
const bundle = join(work, 'bundle');
mkdirSync(bundle);
execFileSync(join(top, 'bundles/make-busybox-rootfs.sh'), [join(bundle, 'rootfs')]);
execFileSync(join(top, 'dist/pocrun'), ['spec', '--bundle', bundle]);
const config = JSON.parse(execFileSync('cat', [join(bundle, 'config.json')]).toString());
config.process.terminal = false;
config.ociVersion = '1.0.2'; // crun 1.8 refuses versions it does not know
config.process.args = ['true'];
config.linux.cgroupsPath = undefined;
writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));

const runtimes = [
  { name: 'pocrun', bin: join(top, 'dist/pocrun') },
  { name: 'runc', bin: 'runc' },
  { name: 'crun', bin: 'crun' },
  ...(also ? [{ name: also[0], bin: also[1].startsWith('/') ? also[1] : join(top, also[1]) }] : []),
].filter((r) => r.bin.startsWith('/') ? existsSync(r.bin) : spawnSync('which', [r.bin]).status === 0);

function time(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

// A created container inherits the runtime's stdio: a pipe would stay open until it exits, so errors go to a file.
const errFile = join(work, 'stderr');
function call(rt, root, argv) {
  const fd = openSync(errFile, 'w');
  const r = spawnSync(rt.bin, [...globalFlags, '--root', root, ...argv], { cwd: bundle, stdio: ['ignore', argv[0] === 'state' ? 'pipe' : 'ignore', fd] });
  closeSync(fd);
  if (r.status !== 0) throw new Error(`${rt.name} ${argv.join(' ')}: exit ${r.status}: ${readFileSync(errFile, 'utf8')}`);
  return r;
}

/** Runs a shell script in a fresh memory cgroup: wall time and the cgroup's peak memory. */
let batch = 0;
function inMemoryCgroup(script) {
  const cg = `/sys/fs/cgroup${inGuest ? '' : '/memory'}/pocrun-bench-${process.pid}-${batch++}`;
  mkdirSync(cg);
  try {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('sh', ['-c', `echo $$ > ${cg}/cgroup.procs; ${script}`], { cwd: bundle, stdio: ['ignore', 'ignore', 'inherit'] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`batch failed: exit ${r.status}`);
    const peak = inGuest ? 'memory.peak' : 'memory.max_usage_in_bytes';
    return { ms, mib: Number(readFileSync(`${cg}/${peak}`, 'utf8')) / 2 ** 20 };
  } finally {
    for (let i = 0; i < 100; i++) {
      try {
        rmdirSync(cg);
        break;
      } catch {
        spawnSync('sleep', ['0.05']);
      }
    }
  }
}

const scenarios = {
  many: (rt, root, i) => {
    const ids = Array.from({ length: MANY }, (_, k) => `m${i}-${k}`);
    const one = (id) => `${rt.bin} ${globalFlags.join(' ')} --root ${root} run --bundle ${bundle} ${id} >/dev/null`;
    const seq = inMemoryCgroup(ids.map(one).join(' && '));
    const par = inMemoryCgroup(`${ids.map((id) => `${one(`${id}p`)} &`).join(' ')} wait`);
    return {
      [`${MANY} in sequence: wall`]: seq.ms, [`${MANY} in sequence: peak MiB`]: seq.mib,
      [`${MANY} at once: wall`]: par.ms, [`${MANY} at once: peak MiB`]: par.mib,
    };
  },
  run: (rt, root, i) => ({ run: time(() => call(rt, root, ['run', '--bundle', bundle, `b${i}`])) }),
  lifecycle: (rt, root, i) => {
    const id = `l${i}`;
    const create = time(() => call(rt, root, ['create', '--bundle', bundle, id]));
    const start = time(() => call(rt, root, ['start', id]));
    // "wait": until the state says stopped.
    const wait = time(() => {
      for (;;) {
        const s = JSON.parse(call(rt, root, ['state', id]).stdout.toString()).status;
        if (s === 'stopped') break;
      }
    });
    const del = time(() => call(rt, root, ['delete', id]));
    return { create, start, wait, delete: del, 'create+start+wait+delete': create + start + wait + del };
  },
  state: (rt, root, i) => {
    const id = `s${i}`;
    call(rt, root, ['create', '--bundle', bundle, id]);
    const state = time(() => call(rt, root, ['state', id]));
    call(rt, root, ['delete', '--force', id]);
    return { state };
  },
};

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const results = {};
try {
  for (const scenario of only.filter((x) => x !== 'engine')) {
    const n = scenario === 'many' ? Math.max(3, Math.round(reps / 10)) : reps;
    for (let i = 0; i < n; i++) {
      for (const rt of runtimes) {
        const root = join(work, `root-${rt.name}`);
        const figures = scenarios[scenario](rt, root, i);
        for (const [metric, ms] of Object.entries(figures)) ((results[metric] ??= {})[rt.name] ??= []).push(ms);
      }
    }
  }
  printRuntimeTable();
  if (only.includes('engine')) engineComparison();
} finally {
  for (const rt of runtimes) {
    const root = join(work, `root-${rt.name}`);
    const list = spawnSync(rt.bin, ['--root', root, 'list', '-q']).stdout?.toString().split('\n').filter(Boolean) ?? [];
    for (const id of list) spawnSync(rt.bin, [...globalFlags, '--root', root, 'delete', '--force', id]);
  }
  rmSync(work, { recursive: true, force: true });
}

/** poc against podman (with runc), alternating, and a monitor's resident memory. */
function engineComparison() {
  if (spawnSync('podman', ['--version']).status !== 0) {
    console.log('\n(podman is not installed: no engine comparison)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'pocrun-bench-engine-'));
  const pocEnv = { ...process.env, POC_ROOT: join(dir, 'poc') };
  const conf = join(dir, 'containers.conf');
  // The hard limits here are below podman's defaults, and nothing may touch systemd or the journal.
  writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n[engine]\nevents_logger = "file"\ncgroup_manager = "cgroupfs"\n');
  const podmanEnv = { ...process.env, CONTAINERS_CONF: conf };
  const podman = ['--root', join(dir, 'podman'), '--runroot', join(dir, 'podman-run'), '--storage-driver', 'overlay'];
  const poc = join(top, 'dist/poc');
  const must = (cmd, argv, env) => {
    const r = spawnSync(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr}`);
    return r.stdout.toString();
  };
  try {
    must(poc, ['init', '--busybox'], pocEnv);
    execFileSync('tar', ['-C', join(bundle, 'rootfs'), '-cf', join(dir, 'busybox.tar'), '.']);
    must('podman', [...podman, 'import', join(dir, 'busybox.tar'), 'localhost/busybox'], podmanEnv);
    const times = { poc: [], podman: [] };
    for (let i = 0; i < reps; i++) {
      times.poc.push(time(() => must(poc, ['run', '--rm', '--network', 'none', 'busybox', 'true'], pocEnv)));
      times.podman.push(time(() => must('podman', [...podman, 'run', '--rm', '--network', 'none', '--runtime', 'runc', 'localhost/busybox', 'true'], podmanEnv)));
    }
    const [p, q] = [median(times.poc), median(times.podman)];
    console.log(`\nengine: run --rm busybox true, network none (median of ${reps}, alternating)`);
    console.log(`  poc run --rm           ${p.toFixed(1)} ms`);
    console.log(`  podman run --rm (runc) ${q.toFixed(1)} ms`);
    console.log(`  poc/podman             ${(p / q).toFixed(2)}`);
    // A detached container's monitor: the parent of the container's init.
    const id = must(poc, ['run', '-d', '--network', 'none', 'busybox', 'sleep', '60'], pocEnv).trim();
    const info = JSON.parse(must(poc, ['inspect', id], pocEnv));
    const pid = (Array.isArray(info) ? info[0] : info).pid ?? (Array.isArray(info) ? info[0] : info).State?.Pid;
    const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${ppid}/status`, 'utf8'))?.[1];
    const comm = readFileSync(`/proc/${ppid}/comm`, 'utf8').trim();
    console.log(`  monitor (${comm}) resident memory: ${rss} kB`);
    must(poc, ['rm', '-f', id], pocEnv);
  } finally {
    spawnSync(poc, ['prune'], { env: pocEnv, stdio: 'ignore' });
    spawnSync('podman', [...podman, 'system', 'reset', '-f'], { env: podmanEnv, stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Medians per metric and runtime, with pocrun's ratios to the others. */
function printRuntimeTable() {
  if (Object.keys(results).length === 0) return;
  const names = runtimes.map((r) => r.name);
  const header = ['metric (median; ms unless MiB)', ...names, ...names.filter((n) => n !== 'pocrun').map((n) => `pocrun/${n}`)];
  const rows = Object.entries(results).map(([metric, byRt]) => {
    const med = Object.fromEntries(names.map((n) => [n, median(byRt[n])]));
    return [metric, ...names.map((n) => med[n].toFixed(1)), ...names.filter((n) => n !== 'pocrun').map((n) => (med.pocrun / med[n]).toFixed(2))];
  });
  // In the emulated guest absolute times mean little: the ratios alone.
  const shown = inGuest ? [0, ...header.map((_, c) => c).filter((c) => c > names.length)] : header.map((_, c) => c);
  const widths = header.map((_, c) => Math.max(...[header, ...rows].map((r) => r[c].length)));
  if (inGuest) {
    console.log(`${reps} repetitions, runtimes alternating, in the cgroup v2 guest (${readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}, ` +
      `emulated: ratios only, absolute times are distorted)${systemd ? ', every runtime with --systemd-cgroup' : ''}`);
    console.log(`runtimes: ${runtimes.map((r) => `${r.name} ${versionOf(r)}`).join(', ')}`);
  } else {
    console.log(`${reps} repetitions, runtimes alternating, inside a private mount namespace with a pure cgroup v1 view`);
  }
  for (const r of [header, ...rows]) console.log(shown.map((c) => r[c].padEnd(widths[c] + 2)).join(''));
}

function versionOf(rt) {
  const out = spawnSync(rt.bin, ['--version'], { encoding: 'utf8' }).stdout ?? '';
  return (/version:? (\S+)/i.exec(out)?.[1] ?? '?').replace(/\+.*$/, '');
}
