#!/usr/bin/env node
// Checkpoint and restore time of a container holding 256 MiB of touched memory: pocrun against runc, in one run,
// the two alternating, in the cgroup v2 test guest (where criu works; it fails on the host's 6.18 kernel).
// Prints the medians and the ratios pocrun/runc. Both drive the same criu (Debian's 3.17): the difference is
// each runtime's own work around it (runc: criu's RPC over swrk; pocrun: criu's command line, see README). That
// work is also shown alone: the wall time less criu's own (the last timestamp of criu's log, dump.log or
// restore.log), which the guest's load moves far less than the wall time.
//
// The container joins a network namespace by path, as podman, containerd and Kubernetes give one (the engine
// makes it and sets up its interfaces), which both runtimes hand criu as external: criu does the same work for
// both. A network namespace of the container's own is not: runc always tells criu to leave it empty (EmptyNs
// with CLONE_NEWNET, "runc doesn't manage network devices"), so criu neither saves nor restores its interfaces,
// addresses, routes and firewall rules, while pocrun has criu save them (as crun does for a namespace without a
// path), which keeps a loopback connection alive across a restore (test/guest/checkpoint.test.ts). criu runs ip,
// iptables-save and ip6tables-save seven times for that: 1.2-2.3 s more of criu's own time per dump in the
// emulated guest (two dumps of a 32 MiB container, dump.log), which would measure a difference of work, not of
// the runtimes.
//
// usage: node bench/checkpoint.mjs [--reps N] [--mib M] [--trace]    (boots the guest and runs there; POC_GUEST=1: here)
// --trace: pocrun's checkpoint runs with POCRUN_TRACE=1 and each rep prints its trace points (ms since Bun started).
// --floor: also the start and exit of each program alone (`--version`, alternating), the part of a runtime's
// overhead that no work of its own can lower: pocrun's Bun program, runc's Go one, and criu (runc starts criu
// twice per checkpoint: go-criu's VERSION request, then the dump; pocrun once, before its Bun program).
// --also NAME=PATH: one more runtime in the same run (e.g. an earlier build's dist/pocrun under bench/out/, which
// the guest sees: the repository's tree is mounted there), shown against runc like pocrun.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const reps = opt('--reps', 5);
const mib = opt('--mib', 256);
const traced = args.includes('--trace');
const floor = args.includes('--floor');

if (process.env.POC_GUEST !== '1') {
  const r = spawnSync(join(top, 'scripts/guest/run.sh'), ['node', 'bench/checkpoint.mjs', ...args], { stdio: 'inherit', cwd: top });
  process.exit(r.status ?? 1);
}

function must(cmd, argv, env = process.env) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000, env });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r;
}

/** The wall time in ms, and the trace points of a traced pocrun ("label@ms"). */
function timed(cmd, argv, env) {
  const t0 = process.hrtime.bigint();
  const r = must(cmd, argv, env);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const points = [...r.stderr.matchAll(/^pocrun trace ([\d.]+) ms \S+ kB: (.*)$/gm)].map((m) => `${m[2]}@${Number(m[1]).toFixed(0)}`);
  return { ms, points };
}

const work = mkdtempSync('/tmp/bench-checkpoint-');
const NETNS = `pocrun-bench-checkpoint-${process.pid}`;
must('ip', ['netns', 'add', NETNS]);
const RUNTIMES = { pocrun: join(top, 'dist/pocrun'), runc: 'runc' };
for (const [i, a] of args.entries()) {
  if (a !== '--also') continue;
  const [name, path] = args[i + 1].split('=');
  RUNTIMES[name] = path.startsWith('/') ? path : join(top, path);
}
const others = Object.keys(RUNTIMES).filter((n) => n !== 'runc');

// A busybox bundle whose shell holds a string of M MiB (every page written) and then waits.
const rootfs = join(work, 'rootfs');
const build = spawnSync(join(top, 'bundles/make-busybox-rootfs.sh'), [rootfs], { stdio: 'inherit' });
if (build.status !== 0) throw new Error('cannot build the busybox rootfs');
must(RUNTIMES.pocrun, ['spec', '--bundle', work]);
const spec = JSON.parse(readFileSync(join(work, 'config.json'), 'utf8'));
spec.process.terminal = false;
spec.root.readonly = false;
// /touched once the string is in the shell's variable: from then on the container is idle (the shell copies the
// string after reading it, for seconds in the emulated guest: it must not compete with the runtime being timed).
spec.process.args = ['sh', '-c', `exec </dev/null >/dev/null 2>&1; x=$(head -c ${mib * 1024 * 1024} /dev/zero | tr '\\0' x); : >/touched; while :; do sleep 1000; done`];
spec.linux.namespaces = spec.linux.namespaces.map((ns) => (ns.type === 'network' ? { type: 'network', path: `/run/netns/${NETNS}` } : ns));

function bundleFor(name) {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'rootfs'))) cpSync(rootfs, join(dir, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...spec, linux: { ...spec.linux, cgroupsPath: `/bench-checkpoint/${name}` } }));
  return dir;
}

/** Waits until the container's shell holds the string and is idle (it wrote /touched; its memory is past M MiB). */
function waitTouched(bin, root, id, bundle) {
  const pid = JSON.parse(must(bin, ['--root', root, 'state', id]).stdout).pid;
  for (let i = 0; i < 6000; i++) {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    if (existsSync(join(bundle, 'rootfs/touched')) && rss >= mib * 1024) return;
    spawnSync('sleep', ['0.1']);
  }
  throw new Error(`${id}: the process never held ${mib} MiB`);
}

/** criu's own time in ms: the last "(SS.ssssss)" timestamp of its log. */
const criuOwn = (log) => Number([...readFileSync(log, 'utf8').matchAll(/^\(\s*([\d.]+)\)/gm)].at(-1)?.[1] ?? NaN) * 1000;

const metrics = ['checkpoint', 'restore', 'checkpoint overhead', 'restore overhead'];

/** One checkpoint and restore, by one runtime, of a fresh container: the four figures in ms. */
function once(name) {
  const bin = RUNTIMES[name];
  const root = join(work, `root-${name}`);
  const bundle = bundleFor(name);
  const id = `bench-${name}`;
  const images = join(work, `images-${name}`);
  const restoreWork = join(work, `restore-work-${name}`);
  rmSync(images, { recursive: true, force: true });
  rmSync(restoreWork, { recursive: true, force: true });
  rmSync(join(bundle, 'rootfs/touched'), { force: true });
  must('sh', ['-c', `"$0" --root "$1" run -d --bundle "$2" "$3" </dev/null >/dev/null 2>&1`, bin, root, bundle, id]);
  waitTouched(bin, root, id, bundle);
  const traceEnv = traced && name !== 'runc' ? { ...process.env, POCRUN_TRACE: '1' } : process.env;
  const { ms: checkpoint, points } = timed(bin, ['--root', root, 'checkpoint', '--image-path', images, id], traceEnv);
  if (points.length) console.log(`  ${name} checkpoint trace: ${points.join(' ')} (wall ${checkpoint.toFixed(0)})`);
  const { ms: restore } = timed('sh', ['-c', `"$0" --root "$1" restore -d --work-path "$5" --bundle "$2" --image-path "$3" "$4" </dev/null >/dev/null 2>&1`, bin, root, bundle, images, id, restoreWork]);
  const out = {
    checkpoint,
    restore,
    'checkpoint overhead': checkpoint - criuOwn(join(images, 'dump.log')),
    'restore overhead': restore - criuOwn(join(restoreWork, 'restore.log')),
  };
  must(bin, ['--root', root, 'delete', '--force', id]);
  return out;
}

const times = Object.fromEntries(Object.keys(RUNTIMES).map((name) => [name, Object.fromEntries(metrics.map((m) => [m, []]))]));
// Untimed, one round of each first: criu's first run after boot probes the kernel (kept in /run/criu.kdat), and the
// emulator translates a program's code at its first run; neither is a runtime's own cost.
for (const name of Object.keys(RUNTIMES)) once(name);
for (let rep = 0; rep < reps; rep++) {
  // Which runtime goes first alternates between repetitions.
  const names = Object.keys(RUNTIMES);
  const order = names.map((_, i) => names[(i + rep) % names.length]);
  const line = [];
  for (const name of order) {
    const r = once(name);
    for (const m of metrics) times[name][m].push(r[m]);
    line.push(`${name} checkpoint ${r.checkpoint.toFixed(0)} (around criu ${r['checkpoint overhead'].toFixed(0)}), restore ${r.restore.toFixed(0)} (${r['restore overhead'].toFixed(0)})`);
  }
  console.log(`rep ${rep + 1}: ${line.join('; ')}`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`checkpoint and restore of a container with ${mib} MiB touched (network namespace by path), ${reps} repetitions after one untimed round, runtimes alternating (each rep's first in turn),`);
console.log(`in the cgroup v2 guest (${spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim()}, ${must('criu', ['--version']).stdout.split('\n')[0]}, ${must('runc', ['--version']).stdout.split('\n')[0]}); medians in ms (emulated: the ratios are what counts)`);
console.log(`metric              ${others.map((n) => n.padStart(12)).join('')}      runc ${others.map((n) => `${n}/runc`.padStart(16)).join('')}`);
for (const metric of metrics) {
  const r = median(times.runc[metric]);
  const ps = others.map((n) => median(times[n][metric]));
  console.log(`${metric.padEnd(20)}${ps.map((p) => p.toFixed(0).padStart(12)).join('')}${r.toFixed(0).padStart(10)} ${ps.map((p) => (p / r).toFixed(2).padStart(16)).join('')}`);
}
console.log('(overhead: the wall time less criu\'s own, from its log: what each runtime adds around criu)');
if (floor) {
  const programs = { 'pocrun (front + Bun)': [RUNTIMES.pocrun, '--version'], 'pocrun-ts (Bun)': [join(top, 'dist/pocrun-ts'), '--version'], runc: ['runc', '--version'], criu: ['criu', '--version'] };
  const walls = Object.fromEntries(Object.keys(programs).map((n) => [n, []]));
  for (let rep = 0; rep < 15; rep++) {
    for (const [name, [cmd, ...argv]] of Object.entries(programs)) walls[name].push(timed(cmd, argv).ms);
  }
  console.log('start and exit alone (--version), 15 repetitions alternating, medians in ms:');
  for (const [name, xs] of Object.entries(walls)) console.log(`  ${name.padEnd(22)} ${median(xs).toFixed(0).padStart(6)}`);
}
rmSync(work, { recursive: true, force: true });
spawnSync('rmdir', ['/sys/fs/cgroup/bench-checkpoint']);
spawnSync('ip', ['netns', 'delete', NETNS]);
