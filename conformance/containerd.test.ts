/**
 * containerd runs its containers with pocrun: `ctr run --runc-binary <pocrun>` makes containerd-shim-runc-v2 call it
 * as it calls runc (`--root <runc root>/<namespace> --log <bundle>/log.json --log-format json create --bundle ...`).
 *
 * The containerd is the test's own (test/helpers/containerd.ts: own root, state, sockets, a config with the CRI
 * plugin disabled, the busybox image built offline with umoci and imported with `ctr images import`), stopped at
 * the end. Containers live in a containerd namespace named after the test process (their cgroups are
 * /<namespace>/<id>), the runtime's state under the test's directory (--runc-root), ctr's fifos too. With
 * POC_CONFORMANCE_CGROUP_MANAGER=systemd the shim runs the runtime with --systemd-cgroup (SystemdCgroup, as
 * `ctr run --runc-systemd-cgroup` sets it), each container a scope <namespace>-<id>.scope in a slice of the test's.
 */
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUSYBOX_IMAGE as IMAGE, startContainerd, type Containerd, type Leftovers } from '../test/helpers/containerd.js';
import { CGROUP_MANAGER, IS_POCRUN, RUNTIME, SYSTEMD, commandExists, hostCgroupDir, inTerminal, sh, waitFor, type Result } from '../test/helpers/engines.js';

const work = mkdtempSync(join(tmpdir(), 'pocrun-containerd-'));
const missing = ['containerd', 'containerd-shim-runc-v2', 'ctr', 'umoci', 'script'].filter((c) => !commandExists(c));
const ready = missing.length === 0 && process.getuid?.() === 0;
let cd: Containerd;

const ctr = (args: string[]): Result => cd.ctr(args);
const ok = (args: string[]): string => cd.ok(args);
const tasks = () => cd.tasks();

/** `ctr run` with the runtime under test: the shim calls it in place of runc. */
const runFlags = () => ['--runc-binary', RUNTIME, '--runc-root', cd.runcRoot, '--fifo-dir', cd.fifoDir];
/** systemd: SystemdCgroup for the shim, and the container's cgroupsPath as slice:prefix:name. */
const cgroupFlags = (id: string) => (SYSTEMD ? ['--runc-systemd-cgroup', '--cgroup', `${cd.slice}:${cd.ns}:${id}`] : []);
/** Where the container's cgroup is, below the hierarchy's root. */
const cgroupOf = (id: string) => (SYSTEMD ? `/${cd.slice}/${cd.ns}-${id}.scope` : `/${cd.ns}/${id}`);
const run = (flags: string[], id: string, args: string[]) => ctr(['run', ...runFlags(), ...cgroupFlags(id), ...flags, IMAGE, id, ...args]);

const status = (r: Result) => `exit status${r.status ? ` (${(r.stderr + r.stdout).trim().slice(-400)})` : ''}`;

function frozen(pid: number): boolean {
  const dir = hostCgroupDir(pid, 'freezer');
  if (existsSync(join(dir, 'freezer.state'))) return readFileSync(join(dir, 'freezer.state'), 'utf8').trim() === 'FROZEN';
  return readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim() === '1';
}

t.before(() => {
  if (ready) cd = startContainerd(work);
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
    t.notOk(existsSync(join(cd.runcRoot, cd.ns, 'echo1')), "the runtime's state is gone");
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
    t.equal(JSON.parse(readFileSync(join(cd.runcRoot, cd.ns, 'd1', 'state.json'), 'utf8')).id ?? 'd1', 'd1', 'the runtime keeps its state under --runc-root');

    const e = ctr(['task', 'exec', '--fifo-dir', cd.fifoDir, '--exec-id', 'e1', 'd1', 'sh', '-c', 'echo in-exec as $(id -u); exit 4']);
    t.equal(e.status, 4, "exec's exit code");
    t.equal(e.stdout, 'in-exec as 0\n');
    const et = inTerminal(['ctr', '--address', cd.address, '--namespace', cd.ns, 'task', 'exec', '--fifo-dir', cd.fifoDir, '-t', '--exec-id', 'e2', 'd1', 'sh', '-c', 'tty; [ -t 0 ] && echo stdin-tty']);
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
    t.notOk(existsSync(join(cd.runcRoot, cd.ns, 'd1')), "the runtime's state is gone");
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
    const r = inTerminal(['ctr', '--address', cd.address, '--namespace', cd.ns, 'run', ...runFlags(), ...cgroupFlags('tty1'), '--rm', '-t', IMAGE, 'tty1', 'sh', '-c', 'tty; [ -t 0 ] && echo stdin-tty; exit 6']);
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
      const unit = sh('systemctl', ['show', `${cd.ns}-mem1.scope`, '-p', 'Delegate', '-p', 'MemoryMax']).stdout;
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

/** Stops containerd and everything the tests started, removes the work directory; what could not be removed. */
function cleanup(): Leftovers {
  const left = cd ? cd.stop() : { processes: [], mounts: [], cgroups: [], units: [] };
  rmSync(work, { recursive: true, force: true });
  return left;
}

t.test('nothing left behind: containerd, shims, containers, mounts, cgroups, units', async (t) => {
  t.same(cleanup(), { processes: [], mounts: [], cgroups: [], units: [] });
  t.notOk(existsSync(work), 'work directory removed');
});

t.teardown(() => {
  cleanup();
});
