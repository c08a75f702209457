// The native front (src/native/front) against the TypeScript program it stands in front of. A copy of the
// front alone in a directory ("lone") cannot hand anything over: what it answers, it answered itself, and what
// it hands over fails with "cannot run .../pocrun-ts". The real front (dist/pocrun) must behave the same either way.
import t, { type Test } from 'tap';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { isDead, makeBundle, POCRUN, POCRUN_TS, Runtime, setup } from '../helpers/runtime.js';
import { SIGNALS } from '../../src/vocabulary/signals.js';
import { MAX_ID_LENGTH } from '../../src/vocabulary/container-id.js';

const { work, rt, residue } = setup();
const ts = new Runtime(work, POCRUN_TS);
mkdirSync(join(work, 'lone'));
copyFileSync(POCRUN, join(work, 'lone/pocrun'));
const lone = new Runtime(work, join(work, 'lone/pocrun'));
const HANDED_OVER = /pocrun: cannot run .*\/lone\/pocrun-ts/;

/** The front's state output is the TypeScript program's, byte for byte. */
function sameState(t: Test, id: string, status: string): void {
  const native = lone.run(['state', id]);
  t.equal(native.status, 0, `state of a ${status} container answered natively: ${native.stderr}`);
  t.equal(native.stdout, ts.ok(['state', id]), `state of a ${status} container: the same document`);
  t.equal(JSON.parse(native.stdout).status, status);
}

function cgroupDirs(id: string): string[] {
  return Object.values(JSON.parse(readFileSync(join(rt.root, id, 'state.json'), 'utf8')).cgroupDirs as Record<string, string>);
}

t.test('state, start, kill and delete are answered natively, with the same results', async (t) => {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sleep', '1000'];
    s.annotations = { 'org.example/quote': 'say "hi"\n\ttab', 'emoji': 'ü ✓', 'control': '\u0001\u001f\\/' };
  });
  rt.ok(['create', '--bundle', b.dir, 'f1']);
  const dirs = cgroupDirs('f1');
  t.ok(dirs.length > 0 && dirs.every((d) => existsSync(d)), 'the record names the cgroup directories');
  sameState(t, 'f1', 'created');
  t.equal(lone.run(['start', 'f1']).status, 0, 'start');
  sameState(t, 'f1', 'running');
  rt.ok(['pause', 'f1']);
  sameState(t, 'f1', 'paused');
  rt.ok(['resume', 'f1']);
  const pid = rt.state('f1').pid;
  t.equal(lone.run(['kill', 'f1', 'sigkill']).status, 0, 'kill');
  rt.waitStatus('f1', 'stopped');
  t.ok(isDead(pid));
  sameState(t, 'f1', 'stopped');
  t.equal(lone.run(['delete', 'f1']).status, 0, 'delete');
  t.notOk(existsSync(join(rt.root, 'f1')), 'state directory removed');
  t.same(dirs.filter((d) => existsSync(d)), [], 'cgroup removed in every hierarchy');
});

t.test("a stopped container's kill and kill --all are answered natively, as the TypeScript program answers", async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['true']; });
  rt.ok(['run', '--detach', '--bundle', b.dir, 'f7']);
  rt.waitStatus('f7', 'stopped');
  const native = lone.run(['kill', 'f7', '9']);
  const program = ts.run(['kill', 'f7', '9']);
  t.equal(native.status, 1, 'kill of a stopped container fails natively');
  t.equal(native.stderr, program.stderr, 'with the same words');
  t.match(native.stderr, /container not running/);
  for (const args of [['kill', '--all', 'f7', '9'], ['kill', '-a', 'f7', 'KILL']]) {
    const r = lone.run(args);
    t.equal(r.status, 0, `${args.join(' ')} answered natively: ${r.stderr}`);
    t.equal(ts.run(args).status, 0, `${args.join(' ')}: the TypeScript program agrees`);
  }
  t.equal(lone.run(['delete', 'f7']).status, 0);
});

t.test('an unknown container is answered natively, in the TypeScript program\'s words', async (t) => {
  for (const args of [['state', 'nope'], ['start', 'nope'], ['kill', 'nope'], ['kill', '--all', 'nope', '9'], ['delete', 'nope']]) {
    const native = lone.run(args);
    const program = ts.run(args);
    t.equal(native.status, 1, `${args.join(' ')}: fails natively`);
    t.equal(native.stderr, program.stderr, `${args.join(' ')}: the same words`);
    t.match(native.stderr, /container "nope" does not exist/);
  }
  for (const args of [['delete', '--force', 'nope'], ['delete', '-f', 'nope']]) {
    const native = lone.run(args);
    t.equal(native.status, 0, `${args.join(' ')} succeeds natively`);
    t.equal(native.stderr, '');
    t.equal(ts.run(args).status, 0, 'as the TypeScript program');
  }
  const log = join(work, 'unknown.log');
  lone.run(['--log', log, '--log-format', 'json', 'state', 'nope']);
  ts.run(['--log', log, '--log-format', 'json', 'state', 'nope']);
  const [a, b] = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same([a.level, a.msg, Object.keys(a)], [b.level, b.msg, Object.keys(b)], 'the same --log line');
});

t.test('delete of a created container kills its waiting init', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['true']; });
  rt.ok(['create', '--bundle', b.dir, 'f2']);
  const pid = rt.state('f2').pid;
  const dirs = cgroupDirs('f2');
  t.equal(lone.run(['delete', '--force', 'f2']).status, 0);
  t.ok(isDead(pid), 'init killed');
  t.notOk(existsSync(join(rt.root, 'f2')));
  t.same(dirs.filter((d) => existsSync(d)), []);
});

t.test('a state directory holding a directory (restore leaves criu\'s there) is handed over with its record intact', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['true']; });
  rt.ok(['create', '--bundle', b.dir, 'f9']);
  rt.ok(['start', 'f9']);
  rt.waitStatus('f9', 'stopped');
  mkdirSync(join(rt.root, 'f9', 'work'));
  writeFileSync(join(rt.root, 'f9', 'work', 'restore.log'), '');
  // The record rewritten last, as after a restore: which entry readdir gives first is the file system's choice
  // (on tmpfs the newest), so this may or may not have caught the old order; the record must survive either way.
  writeFileSync(join(rt.root, 'f9', 'state.json'), readFileSync(join(rt.root, 'f9', 'state.json')));
  const r = lone.run(['delete', 'f9']);
  t.match(r.stderr, HANDED_OVER, 'handed over to the TypeScript program');
  t.ok(existsSync(join(rt.root, 'f9', 'state.json')), 'with the record still there (it was removed first, and delete then said "does not exist")');
  rt.ok(['delete', 'f9']);
  t.notOk(existsSync(join(rt.root, 'f9')), 'the TypeScript program removes it whole');
});

t.test('the front and the TypeScript program share the signal names and the id rule (src/vocabulary)', async (t) => {
  for (const name of Object.keys(SIGNALS)) {
    for (const text of [name, `SIG${name}`, name.toLowerCase()]) {
      t.match(lone.run(['kill', 'nope', text]).stderr, /container "nope" does not exist/, `kill ${text} answered natively`);
    }
  }
  // (An id of MAX_ID_LENGTH would make a state path longer than the front's buffers here: that it hands over.)
  for (const id of ['a+b.c_d-e', '0', 'x'.repeat(200)]) {
    t.match(lone.run(['state', id]).stderr, /does not exist/, `the id ${id.slice(0, 12)} is answered natively`);
  }
  for (const id of ['x'.repeat(MAX_ID_LENGTH + 1), '_a', 'a/b', 'a b']) {
    t.match(lone.run(['state', id]).stderr, HANDED_OVER, `the id ${id.slice(0, 12)} is handed over`);
    t.match(ts.run(['state', id]).stderr, /invalid container id|too long/, 'and refused there');
  }
});

t.test('what the front does not answer reaches the TypeScript program', async (t) => {
  const out = join(work, 'hooks.out');
  const hook = (word: string) => ({ path: '/bin/sh', args: ['sh', '-c', `echo ${word} >> ${out}`] });
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sleep', '1000'];
    s.hooks = { poststart: [hook('poststart')], poststop: [hook('poststop')] };
  });
  rt.ok(['create', '--bundle', b.dir, 'f3']);
  t.match(lone.run(['start', 'f3']).stderr, HANDED_OVER, 'poststart hooks: start is handed over');
  rt.ok(['start', 'f3']);
  t.equal(readFileSync(out, 'utf8'), 'poststart\n');
  t.match(lone.run(['kill', '--all', 'f3', 'KILL']).stderr, HANDED_OVER, 'kill --all is handed over');
  t.match(lone.run(['kill', 'f3', 'RTMIN+1']).stderr, HANDED_OVER, 'a real-time signal is handed over');
  const running = rt.run(['delete', 'f3']);
  t.not(running.status, 0);
  t.match(running.stderr, /cannot delete container "f3" that is not stopped: running/, 'the TypeScript program explains');
  t.match(lone.run(['delete', '--force', 'f3']).stderr, HANDED_OVER, 'delete --force of a running container');
  rt.ok(['delete', '--force', 'f3']);
  t.equal(readFileSync(out, 'utf8'), 'poststart\npoststop\n', 'poststop hooks ran');
  t.notOk(existsSync(join(rt.root, 'f3')));

  for (const args of [['--debug', 'state', 'nope'], ['state', '../x'], ['list'], ['--version'], ['kill', 'nope', 'BOGUS']]) {
    t.match(lone.run(args).stderr, HANDED_OVER, `${args.join(' ')} is handed over`);
  }
  t.match(rt.run(['state', 'nope']).stderr, /container "nope" does not exist/);
  t.match(rt.run(['kill', 'nope', 'BOGUS']).stderr, /unknown signal "BOGUS"/);
  t.match(rt.run(['--version']).stdout, /^pocrun version /);
});

t.test("a creating container's state (pid 0 in the record) is the same from both: the one status rule", async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  rt.ok(['create', '--bundle', b.dir, 'f8']);
  const file = join(rt.root, 'f8', 'state.json');
  const record = JSON.parse(readFileSync(file, 'utf8'));
  const pid = record.pid as number;
  writeFileSync(file, JSON.stringify({ ...record, pid: 0 }));
  sameState(t, 'f8', 'creating');
  writeFileSync(file, JSON.stringify(record));
  sameState(t, 'f8', 'created');
  rt.ok(['delete', '--force', 'f8']);
  t.ok(isDead(pid));
});

t.test('a record from before cgroupDirs is handled by the TypeScript program', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  rt.ok(['create', '--bundle', b.dir, 'f4']);
  const file = join(rt.root, 'f4', 'state.json');
  const record = JSON.parse(readFileSync(file, 'utf8'));
  delete record.cgroupDirs;
  writeFileSync(file, JSON.stringify(record));
  t.match(lone.run(['state', 'f4']).stderr, HANDED_OVER);
  t.equal(rt.state('f4').status, 'created');
  rt.ok(['delete', '--force', 'f4']);
  t.notOk(existsSync(join(rt.root, 'f4')));
});

t.test('a stopped container whose cgroup still holds a process is handed over, which kills it', async (t) => {
  // No pid namespace: the init's background child outlives it, in the container's cgroup.
  const pidFile = join(work, 'child.pid');
  const b = makeBundle(work, (s) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'pid');
    s.mounts!.push({ destination: '/out', type: 'bind', source: work, options: ['rbind'] });
    s.process!.args = ['sh', '-c', 'sleep 1000 & echo $! > /out/child.pid; exit 0'];
  });
  rt.ok(['run', '--detach', '--bundle', b.dir, 'f5']);
  rt.waitStatus('f5', 'stopped');
  for (let i = 0; i < 100 && !existsSync(pidFile); i++) spawnSync('sleep', ['0.02']);
  // The child's pid as the container saw it is the host's: there is no pid namespace.
  const child = Number(readFileSync(pidFile, 'utf8'));
  t.notOk(isDead(child), 'the background child outlived the init');
  t.match(lone.run(['delete', 'f5']).stderr, HANDED_OVER, 'a busy cgroup is handed over');
  t.ok(existsSync(join(rt.root, 'f5', 'state.json')), 'the state is still there for the TypeScript program');
  rt.ok(['delete', 'f5']);
  for (let i = 0; i < 100 && !isDead(child); i++) spawnSync('sleep', ['0.02']);
  t.ok(isDead(child), 'the leftover process was killed');
  t.notOk(existsSync(join(rt.root, 'f5')));
});

t.test('a held lock hands start over, and the TypeScript program waits for it', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  rt.ok(['create', '--bundle', b.dir, 'f6']);
  // A live process's lock: this test's own pid and start time.
  const me = readFileSync(`/proc/${process.pid}/stat`, 'utf8');
  const startTime = me.slice(me.lastIndexOf(')') + 2).split(' ')[19];
  const lock = join(rt.root, 'f6', 'lock');
  writeFileSync(lock, `${process.pid} ${startTime}`);
  t.match(lone.run(['start', 'f6']).stderr, HANDED_OVER);
  const start = spawn(POCRUN, ['--root', rt.root, 'start', 'f6'], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => start.on('exit', resolve));
  spawnSync('sleep', ['0.3']);
  t.equal(rt.state('f6').status, 'created', 'start waits while the lock is held');
  spawnSync('rm', ['-f', lock]);
  t.equal(await exited, 0);
  t.equal(rt.state('f6').status, 'running');
  rt.ok(['delete', '--force', 'f6']);
});

t.test('nothing left behind', async (t) => residue(t));
