import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isDead, makeBundle, setup } from '../helpers/runtime.js';

const { work, rt, residue } = setup();

const sleep = (s: number) => void spawnSync('sleep', [String(s)]);

/** A container whose init counts in /tmp/count (inside its rootfs, readable from the host). */
function counter(id: string) {
  const b = makeBundle(work, (s) => {
    // Written aside and renamed: a read never meets the file emptied by ">" (which read as 0, a flaky "not running").
    s.process!.args = ['sh', '-c', 'i=0; while :; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.02; done'];
  });
  const file = join(b.rootfs, 'tmp/count');
  const read = () => Number(readFileSync(file, 'utf8').trim() || 0);
  return { b, file, read, freezer: `/sys/fs/cgroup/freezer${b.spec.linux!.cgroupsPath}/freezer.state` };
}

t.test('pause freezes every process, resume thaws them; state says paused', async (t) => {
  const c = counter('p1');
  rt.ok(['run', '-d', '--bundle', c.b.dir, 'p1']);
  for (let i = 0; i < 200 && !existsSync(c.file); i++) sleep(0.02);
  sleep(0.2);
  t.ok(c.read() > 0, 'the counter runs');
  rt.ok(['pause', 'p1']);
  t.equal(rt.state('p1').status, 'paused');
  t.equal(readFileSync(c.freezer, 'utf8').trim(), 'FROZEN');
  const frozenAt = c.read();
  sleep(0.4);
  t.equal(c.read(), frozenAt, 'the counter stops while paused');
  t.equal(JSON.parse(rt.ok(['list', '--format', 'json']))[0].status, 'paused', 'list agrees');

  const again = rt.run(['pause', 'p1']);
  t.not(again.status, 0);
  t.match(again.stderr, /cannot pause container "p1": it is paused/);

  rt.ok(['resume', 'p1']);
  t.equal(rt.state('p1').status, 'running');
  t.equal(readFileSync(c.freezer, 'utf8').trim(), 'THAWED');
  sleep(0.3);
  t.ok(c.read() > frozenAt, 'the counter goes on after resume');
  const resumeRunning = rt.run(['resume', 'p1']);
  t.not(resumeRunning.status, 0);
  t.match(resumeRunning.stderr, /cannot resume container "p1": it is running, not paused/);

  // podman's and containerd's sequence: pause, then delete --force of the paused container.
  rt.ok(['pause', 'p1']);
  const { pid } = rt.state('p1');
  rt.ok(['delete', '--force', 'p1']);
  t.ok(isDead(pid), 'the frozen init was killed');
  t.notOk(existsSync(c.freezer), 'its cgroup is gone');
});

t.test('a created container can be paused and resumed, and still starts', async (t) => {
  const c = counter('p2');
  rt.ok(['create', '--bundle', c.b.dir, 'p2']);
  rt.ok(['pause', 'p2']);
  t.equal(rt.state('p2').status, 'paused');
  rt.ok(['resume', 'p2']);
  t.equal(rt.state('p2').status, 'created');
  rt.ok(['start', 'p2']);
  for (let i = 0; i < 200 && !existsSync(c.file); i++) sleep(0.02);
  t.ok(existsSync(c.file), 'started after pause and resume');
  rt.ok(['delete', '-f', 'p2']);
});

t.test('kill -9 of a paused container kills it (SIGKILL is delivered once thawed)', async (t) => {
  const c = counter('p3');
  rt.ok(['run', '-d', '--bundle', c.b.dir, 'p3']);
  rt.ok(['pause', 'p3']);
  rt.ok(['kill', '--all', 'p3', '9']);
  rt.waitStatus('p3', 'stopped');
  rt.ok(['delete', 'p3']);
  t.pass('stopped and deleted');
});

t.test('pause and resume of a stopped or unknown container fail', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['true']; });
  rt.ok(['run', '-d', '--bundle', b.dir, 'p4']);
  rt.waitStatus('p4', 'stopped');
  const p = rt.run(['pause', 'p4']);
  t.not(p.status, 0);
  t.match(p.stderr, /cannot pause container "p4": container not running \(it is stopped\)/);
  const r = rt.run(['resume', 'p4']);
  t.match(r.stderr, /cannot resume container "p4": it is stopped, not paused/);
  rt.ok(['delete', 'p4']);
  t.match(rt.run(['pause', 'nope']).stderr, /container "nope" does not exist/);
  t.match(rt.run(['resume', 'nope']).stderr, /container "nope" does not exist/);
});

t.test('nothing left behind', async (t) => residue(t));
