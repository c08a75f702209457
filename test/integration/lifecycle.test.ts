import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isDead, makeBundle, setup, TEST_CGROUP_PARENT } from '../helpers/runtime.js';

const { work, rt, residue } = setup();

t.test('run prints the container output and exits with its status', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sh', '-c', 'echo hello from $(hostname); exit 3']; });
  const r = rt.run(['run', '--bundle', b.dir, 'run1']);
  t.equal(r.stdout, 'hello from pocrun\n');
  t.equal(r.status, 3);
  t.notOk(existsSync(join(rt.root, 'run1')), 'run deletes the container after it exits');
});

t.test('run --keep leaves the stopped container for state and delete; --no-subreaper is accepted', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sh', '-c', 'exit 7']; });
  const r = rt.run(['run', '--keep', '--no-subreaper', '--bundle', b.dir, 'keep1']);
  t.equal(r.status, 7, r.stderr);
  t.equal(rt.state('keep1').status, 'stopped', 'kept');
  t.ok(existsSync(join(rt.root, 'keep1')));
  rt.ok(['delete', 'keep1']);
  t.notOk(existsSync(join(rt.root, 'keep1')), 'deleted by delete');
  const plain = rt.run(['run', '--bundle', b.dir, 'keep2']);
  t.equal(plain.status, 7);
  t.notOk(existsSync(join(rt.root, 'keep2')), 'without --keep, run deletes it');
});

t.test('create leaves the process waiting; start runs it exactly once', async (t) => {
  const marker = join(work, 'started');
  const b = makeBundle(work, (s) => {
    s.mounts!.push({ destination: '/out', type: 'bind', source: work, options: ['rbind'] });
    s.process!.args = ['sh', '-c', 'echo once >> /out/started; exec sleep 1000'];
  });
  rt.ok(['create', '--bundle', b.dir, '--pid-file', join(work, 'c1.pid'), 'c1']);
  const state = rt.state('c1');
  t.equal(state.status, 'created');
  t.equal(state.bundle, b.dir);
  t.equal(Number(readFileSync(join(work, 'c1.pid'), 'utf8')), state.pid, 'pid file holds the init pid');
  t.notOk(existsSync(marker), 'the user process has not run before start');
  rt.ok(['start', 'c1']);
  t.equal(rt.state('c1').status, 'running');
  for (let i = 0; i < 100 && !existsSync(marker); i++) spawnSync('sleep', ['0.02']);
  t.equal(readFileSync(marker, 'utf8'), 'once\n');
  const again = rt.run(['start', 'c1']);
  t.not(again.status, 0);
  t.match(again.stderr, /cannot start container "c1": it is running, not created/);
  const del = rt.run(['delete', 'c1']);
  t.not(del.status, 0, 'delete refuses a running container');
  t.match(del.stderr, /not stopped: running/);
  rt.ok(['kill', 'c1', 'KILL']);
  rt.waitStatus('c1', 'stopped');
  t.equal(rt.state('c1').pid, 0);
  const kill = rt.run(['kill', 'c1']);
  t.not(kill.status, 0, 'kill of a stopped container is an error');
  t.match(kill.stderr, /not running/);
  rt.ok(['delete', 'c1']);
  t.equal(readFileSync(marker, 'utf8'), 'once\n', 'ran exactly once');
  const gone = rt.run(['state', 'c1']);
  t.not(gone.status, 0);
  t.match(gone.stderr, /container "c1" does not exist/);
});

t.test('signals by name, by SIG name and by number reach the init', async (t) => {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sh', '-c', 'trap "exit 42" USR1; trap "exit 43" TERM; while :; do sleep 0.05; done'];
  });
  for (const [sig, id] of [['USR1', 'sig1'], ['SIGTERM', 'sig2'], ['15', 'sig3']] as const) {
    rt.ok(['run', '--detach', '--bundle', b.dir, id]);
    spawnSync('sleep', ['0.2']);
    rt.ok(['kill', id, sig]);
    rt.waitStatus(id, 'stopped');
    rt.ok(['delete', id]);
  }
  const r = rt.run(['kill', 'nope', 'SIGFOO']);
  t.not(r.status, 0);
  t.match(r.stderr, /unknown signal "SIGFOO"/);
  t.pass('three spellings of a signal delivered');
});

t.test('delete --force kills a running container; of an unknown id it succeeds quietly', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  rt.ok(['run', '-d', '--bundle', b.dir, 'f1']);
  const { pid } = rt.state('f1');
  rt.ok(['delete', '--force', 'f1']);
  t.ok(isDead(pid), 'init is dead (gone, or a zombie until pid 1 reaps it)');
  const quiet = rt.run(['delete', '--force', 'never-existed']);
  t.equal(quiet.status, 0);
  t.equal(quiet.stderr, '');
  for (const cmd of [['start', 'x1'], ['state', 'x1'], ['kill', 'x1'], ['delete', 'x1']]) {
    const r = rt.run(cmd);
    t.not(r.status, 0, `${cmd[0]} of an unknown id fails`);
    t.match(r.stderr, /container "x1" does not exist/);
  }
});

t.test('a reused pid is noticed by its start time', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  rt.ok(['create', '--bundle', b.dir, 'reuse']);
  const file = join(rt.root, 'reuse', 'state.json');
  const record = JSON.parse(readFileSync(file, 'utf8'));
  const realPid = record.pid;
  // The pid now names some other live process (ours), as after a wrap-around.
  writeFileSync(file, JSON.stringify({ ...record, pid: process.pid }));
  t.equal(rt.state('reuse').status, 'stopped');
  writeFileSync(file, JSON.stringify(record));
  t.equal(rt.state('reuse').status, 'created');
  rt.ok(['delete', '--force', 'reuse']);
  t.ok(isDead(realPid), 'delete --force killed the real init');
});

t.test('list shows containers as a table, as JSON and quietly', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  rt.ok(['create', '--bundle', b.dir, 'l1']);
  rt.ok(['run', '-d', '--bundle', b.dir, 'l2']);
  t.equal(rt.ok(['list', '-q']).split('\n').filter(Boolean).sort().join(','), 'l1,l2');
  const json = JSON.parse(rt.ok(['list', '--format', 'json']));
  t.same(json.map((s: { id: string; status: string }) => [s.id, s.status]).sort(), [['l1', 'created'], ['l2', 'running']]);
  const table = rt.ok(['list']);
  t.match(table, /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER\n/);
  t.match(table, /l2\s+\d+\s+running\s+/);
  rt.ok(['delete', '-f', 'l1']);
  rt.ok(['delete', '-f', 'l2']);
});

t.test('the state document is valid against state-schema.json', async (t) => {
  const { validate_state } = await import('../../src/spec/generated/validators.js');
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; s.annotations = { 'org.example': 'x' }; });
  rt.ok(['create', '--bundle', b.dir, 'st']);
  const state = rt.state('st');
  t.ok(validate_state(state), JSON.stringify(validate_state.errors));
  t.same(state.annotations, { 'org.example': 'x' });
  rt.ok(['delete', '-f', 'st']);
});

t.test('the container lives in its cgroup, which delete removes', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; s.linux!.cgroupsPath = `/${TEST_CGROUP_PARENT}/cg1`; });
  rt.ok(['run', '-d', '--bundle', b.dir, 'cg1']);
  const { pid } = rt.state('cg1');
  const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  t.match(cgroups, new RegExp(`memory:/${TEST_CGROUP_PARENT}/cg1\\n`));
  t.match(cgroups, new RegExp(`pids:/${TEST_CGROUP_PARENT}/cg1\\n`));
  const procs = readFileSync(`/sys/fs/cgroup/pids/${TEST_CGROUP_PARENT}/cg1/cgroup.procs`, 'utf8');
  t.match(procs, new RegExp(`^${pid}$`, 'm'));
  rt.ok(['delete', '-f', 'cg1']);
  t.notOk(existsSync(`/sys/fs/cgroup/pids/${TEST_CGROUP_PARENT}/cg1`), 'cgroup removed');
});

t.test('a .env or bunfig.toml in the bundle directory does not configure pocrun', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['echo', 'unaffected']; });
  writeFileSync(join(b.dir, '.env'), 'POCRUN_INIT=/bin/false\nPOCRUN_TRACE=1\n');
  writeFileSync(join(b.dir, 'bunfig.toml'), 'preload = ["./evil.ts"]\n');
  const r = rt.run(['run', 'dotenv'], { cwd: b.dir });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'unaffected\n');
  t.equal(r.stderr, '');
});

t.test('nothing left behind', async (t) => residue(t));
