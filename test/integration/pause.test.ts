import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isDead, makeBundle, POCRUN, POCRUN_TS, Runtime, setup, TEST_CGROUP_PARENT } from '../helpers/runtime.js';

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

t.test('a frozen cgroup whose init is gone is paused, as runc says; delete wants --force, kill says not running, resume ends it', async (t) => {
  // The native front alone (front.test.ts's "lone"): what it answers, it answered itself.
  mkdirSync(join(work, 'lone'), { recursive: true });
  copyFileSync(POCRUN, join(work, 'lone/pocrun'));
  const lone = new Runtime(work, join(work, 'lone/pocrun'));
  const ts = new Runtime(work, POCRUN_TS);
  const runc = new Runtime(work, 'runc', [], join(work, 'runc-root'));
  t.teardown(() => runc.cleanup());
  for (const [name, r] of [['pocrun', rt], ['runc', runc]] as const) {
    const id = `p5${name}`;
    const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
    const freezer = `/sys/fs/cgroup/freezer${b.spec.linux!.cgroupsPath}/freezer.state`;
    r.ok(['run', '-d', '--bundle', b.dir, id]);
    const { pid } = r.state(id);
    // Frozen only through its parent (this file's cgroup parent): not paused, as runc reads freezer.self_freezing.
    const parent = `/sys/fs/cgroup/freezer/${TEST_CGROUP_PARENT}/freezer.state`;
    writeFileSync(parent, 'FROZEN');
    for (let i = 0; i < 100 && readFileSync(freezer, 'utf8').trim() !== 'FROZEN'; i++) sleep(0.02);
    t.equal(readFileSync(freezer, 'utf8').trim(), 'FROZEN', `${name}: its cgroup is frozen through its parent`);
    t.equal(r.state(id).status, 'running', `${name}: and it is running, not paused`);
    if (name === 'pocrun') t.equal(ts.state(id).status, 'running', 'the TypeScript program agrees');
    writeFileSync(parent, 'THAWED');
    r.ok(['pause', id]);
    // cgroup v1: a frozen task does not die of SIGKILL until it is thawed (v2 lets it: test/guest/cgroup-v2.test.ts).
    process.kill(pid, 'SIGKILL');
    sleep(0.3);
    t.notOk(isDead(pid), `${name}: the frozen init outlives a SIGKILL while frozen (cgroup v1)`);
    t.equal(r.state(id).status, 'paused');
    r.ok(['resume', id]);
    r.waitStatus(id, 'stopped');
    t.ok(isDead(pid), `${name}: it dies once thawed`);

    // Frozen after its init died (anyone may write the freezer): the freezer is read first.
    writeFileSync(freezer, 'FROZEN');
    t.same([r.state(id).status, r.state(id).pid], ['paused', pid], `${name}: paused, with the init's pid`);
    const del = r.run(['delete', id]);
    t.not(del.status, 0, `${name}: delete without --force refuses it`);
    t.match(del.stderr, new RegExp(`cannot delete container "?${id}"? that is not stopped: paused`));
    t.ok(existsSync(freezer), `${name}: and leaves it`);
    r.ok(['resume', id]);
    t.equal(r.state(id).status, 'stopped', `${name}: resume thaws it, and it is stopped`);
    writeFileSync(freezer, 'FROZEN');
    r.ok(['delete', '--force', id]);
    t.notOk(existsSync(join(r.root, id)), `${name}: delete --force removes it`);
    t.notOk(existsSync(freezer), `${name}: and its frozen cgroup`);
    if (name === 'runc') continue;

    // pocrun's other commands on such a container, the front and the TypeScript program alike.
    r.ok(['run', '-d', '--bundle', b.dir, id]);
    const again = r.state(id).pid;
    r.ok(['kill', id, 'KILL']);
    r.waitStatus(id, 'stopped');
    writeFileSync(freezer, 'FROZEN');
    const native = lone.run(['state', id]);
    t.equal(native.status, 0, 'the front answers its state itself');
    t.equal(native.stdout, ts.ok(['state', id]), 'the same document as the TypeScript program');
    t.same([JSON.parse(native.stdout).status, JSON.parse(native.stdout).pid], ['paused', again]);
    for (const signal of ['TERM', 'KILL']) {
      const front = lone.run(['kill', id, signal]);
      t.equal(front.status, 1, `kill ${signal}: refused by the front itself`);
      t.match(front.stderr, new RegExp(`cannot kill container "${id}": container not running`));
      t.equal(ts.run(['kill', id, signal]).stderr, front.stderr, `kill ${signal}: the TypeScript program's words`);
    }
    t.equal(readFileSync(freezer, 'utf8').trim(), 'FROZEN', 'a refused kill leaves the cgroup frozen');
    const exec = rt.run(['exec', '--ignore-paused', id, 'true']);
    t.not(exec.status, 0);
    t.match(exec.stderr, new RegExp(`cannot exec in container "${id}": it is paused and its init has exited`));
    t.match(rt.run(['pause', id]).stderr, new RegExp(`cannot pause container "${id}": it is paused already`));
    // A criu that only listens (the host's kernel runs no real one): pocrun must refuse before asking it anything.
    const criu = join(work, 'criu-swrk');
    writeFileSync(criu, '#!/bin/sh\nexec cat <&$2 >/dev/null\n', { mode: 0o755 });
    const checkpoint = rt.run(['--criu', criu, 'checkpoint', '--image-path', join(work, 'no-images'), id]);
    t.match(checkpoint.stderr, new RegExp(`cannot checkpoint container "${id}": it is paused and its init has exited`));
    t.notOk(existsSync(join(work, 'no-images')), 'checkpoint made no image directory');
    t.match(rt.run(['start', id]).stderr, new RegExp(`cannot start container "${id}": it is paused, not created`));
    // containerd's kill --all ID 9 on every exit: SIGKILL thaws what it kills, as kill of a paused container does.
    rt.ok(['kill', '--all', id, '9']);
    t.equal(rt.state(id).status, 'stopped', 'kill --all 9 leaves it thawed: stopped');
    rt.ok(['delete', id]);
  }
});

t.test('nothing left behind', async (t) => residue(t));
