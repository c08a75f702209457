/**
 * The guest is what the cgroup v2 tests need it to be (scripts/guest/: Debian 12, systemd as PID 1, the unified
 * hierarchy alone at /sys/fs/cgroup, kernel 6.1), and pocrun runs a busybox bundle there with its memory and pids
 * limits in the kernel's files and enforced. Runs only in the guest: scripts/guest/test.sh.
 */
import t from 'tap';
import { existsSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isDead, makeBundle, Runtime, setup, TEST_CGROUP_PARENT } from '../helpers/runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';

/** statfs(2)'s f_type for cgroup2 (linux/magic.h CGROUP2_SUPER_MAGIC). */
const CGROUP2_SUPER_MAGIC = 0x63677270;
const MB = 1024 * 1024;

const { work, rt, residue } = setup();
let n = 0;

/** A busybox bundle with limits, beside the default spec's device rules (an eBPF device filter on v2). */
function bundle(args: string[], resources: NonNullable<Spec['linux']>['resources']) {
  return makeBundle(work, (s) => {
    s.process!.args = args;
    s.linux!.resources = { ...s.linux!.resources, ...resources };
  });
}

t.test('the guest: cgroup2 at /sys/fs/cgroup, systemd as PID 1, kernel 6.1', async (t) => {
  t.equal(process.env.POC_GUEST, '1', 'POC_GUEST=1: this file runs in the guest (scripts/guest/test.sh), never on the host');
  t.equal(statfsSync('/sys/fs/cgroup').type, CGROUP2_SUPER_MAGIC, '/sys/fs/cgroup is a cgroup2 file system');
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
  t.same(mounts.filter((m) => m[2] === 'cgroup').map((m) => m[1]), [], 'no cgroup v1 hierarchy is mounted');
  t.match(readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8'), /\bmemory\b.*\bpids\b/, 'memory and pids are available');
  t.equal(readFileSync('/proc/1/comm', 'utf8').trim(), 'systemd', 'PID 1 is systemd');
  t.match(release(), /^6\.1\./, `kernel 6.1 (${release()})`);
  t.equal(process.getuid?.(), 0, 'root');
  t.match(process.version, /^v20\./, 'node 20');
});

t.test('pocrun run -d: memory and pids limits are in the container\'s cgroup', async (t) => {
  const id = `v2-${n++}`;
  const b = bundle(['sleep', '1000'], { memory: { limit: 64 * MB }, pids: { limit: 32 } });
  rt.ok(['run', '-d', '--bundle', b.dir, id]);
  t.teardown(() => void rt.run(['delete', '-f', id]));
  const dir = `/sys/fs/cgroup${b.spec.linux!.cgroupsPath}`;
  const pid = rt.state(id).pid;
  t.equal(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), `0::${b.spec.linux!.cgroupsPath}\n`, 'the init is in the cgroup');
  t.equal(readFileSync(`${dir}/memory.max`, 'utf8'), `${64 * MB}\n`, 'memory.max');
  t.equal(readFileSync(`${dir}/pids.max`, 'utf8'), '32\n', 'pids.max');
  t.match(readFileSync(`${dir}/cgroup.procs`, 'utf8'), new RegExp(`^${pid}$`, 'm'), 'cgroup.procs lists the init');
  rt.ok(['delete', '-f', id]);
  t.notOk(existsSync(dir), 'delete removed the cgroup');
});

t.test('pocrun run: the pids limit is enforced by the kernel', async (t) => {
  // 4 pids, the shell among them: a fork fails (EAGAIN) before the loop's tenth, and the shell gives up there.
  const script = 'i=0; while [ $i -lt 10 ]; do sleep 30 & i=$((i+1)); echo $i; done';
  const b = bundle(['sh', '-c', script], { pids: { limit: 4 } });
  const r = rt.run(['run', '--bundle', b.dir, `v2-${n++}`]);
  const forked = r.stdout.split('\n').filter(Boolean).length;
  t.ok(forked >= 1 && forked <= 3, `at most three children forked (${forked})`);
  t.match(r.stderr, /can't fork: Resource temporarily unavailable/, 'the fourth was refused');
  t.not(r.status, 0, 'and the shell failed');
});

t.test('pocrun run: the memory limit is enforced by the kernel', async (t) => {
  // A 64 MiB buffer filled under a 32 MiB limit (no swap): the OOM killer ends dd, the container's init.
  const b = bundle(['dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'], { memory: { limit: 32 * MB, swap: 32 * MB } });
  const r = rt.run(['run', '--bundle', b.dir, `v2-${n++}`]);
  t.equal(r.status, 137, `killed by SIGKILL (${r.stderr.trim()})`);
  t.notMatch(r.stderr, /records out/, 'dd never finished');
});

t.test('v2: an init killed while paused dies frozen, and the container is paused, as runc says', async (t) => {
  // v2's freezer lets a fatal signal through (v1's does not: test/integration/pause.test.ts). runc reads the
  // freezer before the init (libcontainer's refreshState), and so does pocrun's status rule.
  const runc = new Runtime(work, 'runc', [], join(work, 'runc-root'));
  t.teardown(() => runc.cleanup());
  for (const [name, r] of [['pocrun', rt], ['runc', runc]] as const) {
    const id = `v2-paused-${name}`;
    const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
    const dir = `/sys/fs/cgroup${b.spec.linux!.cgroupsPath}`;
    r.ok(['run', '-d', '--bundle', b.dir, id]);
    const { pid } = r.state(id);
    // Frozen only through its parent (this file's cgroup parent): not paused, as runc reads its own cgroup.freeze.
    const parent = `/sys/fs/cgroup/${TEST_CGROUP_PARENT}/cgroup.freeze`;
    writeFileSync(parent, '1');
    for (let i = 0; i < 250 && !/^frozen 1$/m.test(readFileSync(`${dir}/cgroup.events`, 'utf8')); i++) spawnSync('sleep', ['0.02']);
    t.match(readFileSync(`${dir}/cgroup.events`, 'utf8'), /^frozen 1$/m, `${name}: frozen through its parent`);
    t.equal(r.state(id).status, 'running', `${name}: and running, not paused`);
    writeFileSync(parent, '0');
    r.ok(['pause', id]);
    process.kill(pid, 'SIGKILL'); // from outside, as the OOM killer or a user's kill -9
    for (let i = 0; i < 500 && !isDead(pid); i++) spawnSync('sleep', ['0.02']);
    t.ok(isDead(pid), `${name}: the frozen init died`);
    t.match(readFileSync(`${dir}/cgroup.events`, 'utf8'), /^frozen 1$/m, `${name}: its cgroup is still frozen`);
    t.same([r.state(id).status, r.state(id).pid], ['paused', pid], `${name}: paused, with the init's pid`);
    const del = r.run(['delete', id]);
    t.match(del.stderr, new RegExp(`cannot delete container "?${id}"? that is not stopped: paused`), `${name}: delete wants --force`);
    if (name === 'pocrun') t.match(rt.run(['kill', id, 'TERM']).stderr, /container not running/, 'kill: not running');
    r.ok(['delete', '--force', id]);
    t.notOk(existsSync(dir), `${name}: delete --force removes the frozen cgroup`);
    t.notOk(existsSync(join(r.root, id)), `${name}: and the state`);
  }
  // containerd stops a paused task with kill --all ID 9 (cgroup.kill on v2): SIGKILL thaws it, as on v1, so the
  // container reads stopped and its delete needs no --force.
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  rt.ok(['run', '-d', '--bundle', b.dir, 'v2-paused-killall']);
  rt.ok(['pause', 'v2-paused-killall']);
  rt.ok(['kill', '--all', 'v2-paused-killall', '9']);
  rt.waitStatus('v2-paused-killall', 'stopped');
  t.equal(readFileSync(`/sys/fs/cgroup${b.spec.linux!.cgroupsPath}/cgroup.freeze`, 'utf8').trim(), '0', 'thawed');
  rt.ok(['delete', 'v2-paused-killall']);
});

t.test('nothing left behind', async (t) => residue(t));
