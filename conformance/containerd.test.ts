/**
 * containerd runs its containers with pocrun: `ctr run --runc-binary <pocrun>` makes containerd-shim-runc-v2 call it
 * as it calls runc (`--root <runc root>/<namespace> --log <bundle>/log.json --log-format json create --bundle ...`).
 *
 * The test starts a containerd of its own (own root, state, sockets, a config with the CRI plugin disabled) and
 * stops it at the end. The image is built offline with umoci from the busybox rootfs and imported with
 * `ctr images import`. Containers live in a containerd namespace named after the test process (their cgroups
 * are /<namespace>/<id>), the runtime's state under the test's directory (--runc-root), ctr's fifos too. With
 * POC_CONFORMANCE_CGROUP_MANAGER=systemd the shim runs the runtime with --systemd-cgroup (SystemdCgroup, as
 * `ctr run --runc-systemd-cgroup` sets it), each container a scope <namespace>-<id>.scope in a slice of the test's.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfs } from '../test/helpers/runtime.js';
import { ociImageArchive } from '../test/helpers/oci-image.js';
import {
  CGROUP_MANAGER, IS_POCRUN, RUNTIME, SYSTEMD, commandExists, hostCgroupDir, inTerminal, mountsUnder, processesMentioning, removeCgroupTree,
  sh, stopSlice, unitsMentioning, waitFor, type Result,
} from '../test/helpers/engines.js';

const IMAGE = 'localhost/busybox:latest';
const work = mkdtempSync(join(tmpdir(), 'pocrun-containerd-'));
const ns = `pocrun-conformance-${process.pid}`;
const address = join(work, 'containerd.sock');
const runcRoot = join(work, 'runc-root');
const fifoDir = join(work, 'fifo');
/** systemd: the test's slice (one name, no dash: systemd would nest dashed parts). */
const slice = `pocrunconformance${process.pid}.slice`;

const missing = ['containerd', 'containerd-shim-runc-v2', 'ctr', 'umoci', 'script'].filter((c) => !commandExists(c));
const ready = missing.length === 0 && process.getuid?.() === 0;
let daemonPid = 0;
/** /run/containerd holds the shims' sockets (a fixed path in containerd 1.6): removed at the end if we made it. */
const runContainerdExisted = existsSync('/run/containerd');

function ctr(args: string[], timeout = 60_000): Result {
  return sh('ctr', ['--address', address, '--namespace', ns, ...args], { timeout });
}

function ok(args: string[]): string {
  const r = ctr(args);
  if (r.status !== 0) throw new Error(`ctr ${args.join(' ')}: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** `ctr run` with the runtime under test: the shim calls it in place of runc. */
const runFlags = ['--runc-binary', RUNTIME, '--runc-root', runcRoot, '--fifo-dir', fifoDir];
/** systemd: SystemdCgroup for the shim, and the container's cgroupsPath as slice:prefix:name. */
const cgroupFlags = (id: string) => (SYSTEMD ? ['--runc-systemd-cgroup', '--cgroup', `${slice}:${ns}:${id}`] : []);
/** Where the container's cgroup is, below the hierarchy's root. */
const cgroupOf = (id: string) => (SYSTEMD ? `/${slice}/${ns}-${id}.scope` : `/${ns}/${id}`);
const run = (flags: string[], id: string, args: string[]) => ctr(['run', ...runFlags, ...cgroupFlags(id), ...flags, IMAGE, id, ...args]);

const status = (r: Result) => `exit status${r.status ? ` (${(r.stderr + r.stdout).trim().slice(-400)})` : ''}`;

/** `ctr task ls`: task → [pid, status]. */
function tasks(): Map<string, [number, string]> {
  const out = new Map<string, [number, string]>();
  for (const line of ok(['task', 'ls']).trim().split('\n').slice(1)) {
    const [id, pid, st] = line.trim().split(/\s+/);
    if (id) out.set(id, [Number(pid), st!]);
  }
  return out;
}

function frozen(pid: number): boolean {
  const dir = hostCgroupDir(pid, 'freezer');
  if (existsSync(join(dir, 'freezer.state'))) return readFileSync(join(dir, 'freezer.state'), 'utf8').trim() === 'FROZEN';
  return readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim() === '1';
}

/** The busybox rootfs as an OCI image archive, built offline, for `ctr images import`. */
function buildImage(): string {
  return ociImageArchive(work, 'busybox', {
    fill: (rootfs) => busyboxRootfs(rootfs),
    config: ['--config.cmd', 'sh', '--config.env', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
  });
}

t.before(async () => {
  if (!ready) return;
  mkdirSync(fifoDir, { recursive: true });
  writeFileSync(join(work, 'config.toml'), `version = 2
root = "${join(work, 'root')}"
state = "${join(work, 'state')}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "${address}"

[ttrpc]
  address = "${address}.ttrpc"

[debug]
  level = "info"

[metrics]
  address = ""
`);
  const log = openSync(join(work, 'containerd.log'), 'w');
  const daemon = spawn('containerd', ['--config', join(work, 'config.toml')], { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  daemon.unref();
  daemonPid = daemon.pid!;
  waitFor('containerd to answer', () => (ctr(['version'], 5_000).status === 0 ? true : undefined), 20_000);
  const archive = buildImage();
  ok(['images', 'import', '--base-name', 'localhost/busybox', archive]);
});

t.test('engine and runtime', async (t) => {
  t.same(missing, [], 'containerd, its runc shim, ctr, umoci and script are installed (scripts/setup.sh installs them)');
  t.equal(process.getuid?.(), 0, 'root');
  if (!ready) return;
  t.comment(`runtime: ${RUNTIME}, cgroup manager: ${CGROUP_MANAGER}`);
  t.comment(`containerd: ${sh('containerd', ['--version']).stdout.trim()}`);
  t.match(ok(['images', 'ls', '-q']), IMAGE, 'the image was imported offline');
});

t.test('containerd', { skip: !ready }, async (t) => {
  t.test('run --rm echo', async (t) => {
    const r = run(['--rm'], 'echo1', ['echo', 'hello from containerd']);
    t.equal(r.status, 0, status(r));
    t.equal(r.stdout, 'hello from containerd\n');
    t.equal(ok(['containers', 'ls', '-q']), '', '--rm removed the container');
    t.notOk(existsSync(join(runcRoot, ns, 'echo1')), "the runtime's state is gone");
  });

  t.test("the container's exit code is ctr run's", async (t) => {
    t.equal(run(['--rm'], 'exit1', ['sh', '-c', 'exit 3']).status, 3);
  });

  t.test("a failing container shows the runtime's error", async (t) => {
    const r = run(['--rm'], 'fail1', ['no-such-command']);
    t.not(r.status, 0);
    t.match(r.stderr, /"no-such-command": executable file not found in \$PATH/);
    // The shim reads it from the JSON log pocrun writes with --log-format json.
    if (IS_POCRUN) t.match(r.stderr, /config\.json \/process\/args/, "pocrun's message, with the config field");
    ctr(['containers', 'rm', 'fail1']);
  });

  t.test('a detached task: exec (also -t), pause/resume, metrics, ps, kill, delete', async (t) => {
    const r = run(['-d'], 'd1', ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 0.1; done']);
    t.equal(r.status, 0, status(r));
    const [pid, st] = tasks().get('d1')!;
    t.equal(st, 'RUNNING');
    t.ok(pid > 0, 'the task has its init pid');
    t.equal(JSON.parse(readFileSync(join(runcRoot, ns, 'd1', 'state.json'), 'utf8')).id ?? 'd1', 'd1', 'the runtime keeps its state under --runc-root');

    const e = ctr(['task', 'exec', '--fifo-dir', fifoDir, '--exec-id', 'e1', 'd1', 'sh', '-c', 'echo in-exec as $(id -u); exit 4']);
    t.equal(e.status, 4, "exec's exit code");
    t.equal(e.stdout, 'in-exec as 0\n');
    const et = inTerminal(['ctr', '--address', address, '--namespace', ns, 'task', 'exec', '--fifo-dir', fifoDir, '-t', '--exec-id', 'e2', 'd1', 'sh', '-c', 'tty; [ -t 0 ] && echo stdin-tty']);
    t.match(et.stdout, /\/dev\/pts\/\d+\r*\n/, 'exec -t: a terminal');
    t.match(et.stdout, /stdin-tty/);

    ok(['task', 'pause', 'd1']);
    t.equal(tasks().get('d1')![1], 'PAUSED');
    t.ok(frozen(pid), 'frozen on the host');
    ok(['task', 'resume', 'd1']);
    t.equal(tasks().get('d1')![1], 'RUNNING');
    t.notOk(frozen(pid), 'thawed');

    const metrics = ok(['task', 'metrics', 'd1']);
    t.match(metrics, /memory\.usage_in_bytes\s+[1-9]\d*|memory\.usage\s+[1-9]/, 'metrics: memory');
    t.match(metrics, /pids\.current\s+[1-9]/, 'metrics: pids');

    const ps = ok(['task', 'ps', 'd1']);
    t.match(ps, new RegExp(`^${pid}\\s`, 'm'), 'ps lists the init');

    ok(['task', 'kill', 'd1']);
    waitFor('the task to stop', () => (tasks().get('d1')?.[1] === 'STOPPED' ? true : undefined));
    t.pass('SIGTERM stopped it (its trap exits 0)');
    const del = ctr(['task', 'delete', 'd1']);
    t.equal(del.status, 0, status(del));
    t.notOk(tasks().has('d1'), 'task deleted');
    t.notOk(existsSync(join(runcRoot, ns, 'd1')), "the runtime's state is gone");
    ok(['containers', 'rm', 'd1']);
  });

  t.test('kill -s KILL and delete of a running task', async (t) => {
    t.equal(run(['-d'], 'k1', ['sleep', '1000']).status, 0);
    ok(['task', 'kill', '-s', 'SIGKILL', 'k1']);
    waitFor('the task to stop', () => (tasks().get('k1')?.[1] === 'STOPPED' ? true : undefined));
    ok(['task', 'delete', 'k1']);
    ok(['containers', 'rm', 'k1']);
    t.equal(run(['-d'], 'k2', ['sleep', '1000']).status, 0);
    const del = ctr(['task', 'delete', '--force', 'k2']);
    t.equal(del.status, 0, status(del));
    ok(['containers', 'rm', 'k2']);
    t.equal(ok(['containers', 'ls', '-q']), '');
  });

  t.test('run -t', async (t) => {
    const r = inTerminal(['ctr', '--address', address, '--namespace', ns, 'run', ...runFlags, ...cgroupFlags('tty1'), '--rm', '-t', IMAGE, 'tty1', 'sh', '-c', 'tty; [ -t 0 ] && echo stdin-tty; exit 6']);
    t.equal(r.status, 6, status(r));
    t.match(r.stdout, /\/dev\/pts\/\d+\r*\n/, 'the container has a terminal');
    t.match(r.stdout, /stdin-tty/, 'on stdin too');
  });

  t.test('a memory limit', async (t) => {
    const limit = 64 * 1024 * 1024;
    t.equal(run(['-d', '--memory-limit', String(limit)], 'mem1', ['sleep', '1000']).status, 0);
    const [pid] = tasks().get('mem1')!;
    const dir = hostCgroupDir(pid, 'memory');
    t.ok(dir.endsWith(cgroupOf('mem1')), `the cgroup containerd asked for (${dir})`);
    if (SYSTEMD) {
      const unit = sh('systemctl', ['show', `${ns}-mem1.scope`, '-p', 'Delegate', '-p', 'MemoryMax']).stdout;
      t.equal(unit, `Delegate=yes\nMemoryMax=${limit}\n`, 'systemd knows the limit');
    }
    const file = existsSync(join(dir, 'memory.limit_in_bytes')) ? 'memory.limit_in_bytes' : 'memory.max';
    t.equal(readFileSync(join(dir, file), 'utf8').trim(), String(limit), `host ${file}`);
    t.equal(ok(['task', 'metrics', 'mem1']).match(/memory\.limit_in_bytes\s+(\d+)|memory\.usage_limit\s+(\d+)/)?.slice(1).find(Boolean), String(limit), 'metrics shows it (ctr: memory.limit_in_bytes on v1, memory.usage_limit on v2)');
    ctr(['task', 'delete', '--force', 'mem1']);
    ok(['containers', 'rm', 'mem1']);
  });

  t.test('--read-only', async (t) => {
    const r = run(['--rm', '--read-only'], 'ro1', ['sh', '-c', 'touch /x || echo refused']);
    t.equal(r.status, 0, status(r));
    t.equal(r.stdout, 'refused\n');
    t.match(r.stderr + r.stdout, /Read-only file system/);
  });

  t.equal(ok(['containers', 'ls', '-q']), '', 'no container is left');
});

let cleaned = false;

/** Stops everything the tests started and removes what they made; returns what could not be removed. */
function cleanup(): { processes: string[]; mounts: string[]; cgroups: string[]; units: string[] } {
  cleaned = true;
  if (ready && daemonPid) {
    for (const id of ctr(['task', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['task', 'delete', '--force', id]);
    for (const id of ctr(['containers', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['containers', 'rm', id]);
    for (const ref of ctr(['images', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['images', 'rm', ref]);
    ctr(['namespaces', 'rm', ns]);
    try {
      process.kill(daemonPid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    try {
      waitFor('containerd and its shims to end', () => (processesMentioning(work).length ? undefined : true), 20_000);
    } catch {
      /* reported */
    }
    for (const m of mountsUnder(work).reverse()) sh('umount', ['-l', m]);
  }
  // With systemd: the containers' scopes must be gone; the slice is the test's.
  const units = unitsMentioning(ns);
  stopSlice(slice);
  const left = { processes: processesMentioning(work), mounts: mountsUnder(work), cgroups: [...removeCgroupTree(ns), ...removeCgroupTree(slice)], units: [...units, ...unitsMentioning(slice)] };
  rmSync(work, { recursive: true, force: true });
  if (!runContainerdExisted) {
    for (const dir of ['/run/containerd/s', '/run/containerd/fifo', '/run/containerd']) {
      try {
        if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
      } catch {
        /* someone else's now */
      }
    }
  }
  return left;
}

t.test('nothing left behind: containerd, shims, containers, mounts, cgroups', async (t) => {
  const left = cleanup();
  t.same(left, { processes: [], mounts: [], cgroups: [], units: [] });
  t.notOk(existsSync(work), 'work directory removed');
});

t.teardown(() => {
  if (!cleaned) cleanup();
});
