// The contract engines really read, held side by side with runc: exit statuses and the words of errors that
// containerd's runc shim, CRI-O and podman match on (README, "The engine contract"). Each case runs through the
// native front (dist/pocrun), the TypeScript program alone (dist/pocrun-ts) and runc, and they must agree.
import t from 'tap';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isDead, makeBundle, POCRUN, POCRUN_TS, Runtime, setup, stateDirs } from '../helpers/runtime.js';
import { commandExists } from '../helpers/engines.js';

const { work, residue } = setup();
const runtimes: [string, Runtime][] = [
  ['pocrun', new Runtime(join(work, 'front'), POCRUN)],
  ['pocrun-ts', new Runtime(join(work, 'ts'), POCRUN_TS)],
  ['runc', new Runtime(join(work, 'runc'), 'runc')],
];
for (const [, rt] of runtimes) mkdirSync(rt.work, { recursive: true });
let n = 0;

t.test('runc is installed (the reference)', async (t) => {
  t.ok(commandExists('runc'), 'scripts/setup.sh installs it');
});

/** A container that has run `sh -c CMD` and exited (its cgroup is still there, as engines find it). */
function stopped(rt: Runtime, cmd = 'exit 3', change: Parameters<typeof makeBundle>[1] = () => {}): string {
  const id = `k${n++}`;
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sh', '-c', cmd];
    change(s);
  }, id);
  rt.ok(['run', '--detach', '--bundle', b.dir, id]);
  rt.waitStatus(id, 'stopped');
  return id;
}

for (const [name, rt] of runtimes) {
  t.test(name, async (t) => {
    t.test('kill of a stopped container: an error in runc\'s words ("container not running")', async (t) => {
      const id = stopped(rt);
      for (const args of [['kill', id], ['kill', id, '9'], ['kill', id, 'KILL']]) {
        const r = rt.run(args);
        t.equal(r.status, 1, args.join(' '));
        t.match(r.stderr, /container not running/, 'containerd and CRI-O read it as "already gone"');
      }
      rt.ok(['delete', id]);
    });

    t.test('kill --all of a stopped container succeeds (containerd does it on every exit)', async (t) => {
      const id = stopped(rt);
      for (const args of [['kill', '--all', id, '9'], ['kill', '-a', id, 'KILL'], ['kill', '--all', id]]) {
        const r = rt.run(args);
        t.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
        t.equal(r.stderr, '');
      }
      t.equal(rt.state(id).status, 'stopped');
      rt.ok(['delete', id]);
    });

    t.test('kill --all of a stopped container kills what is left in its cgroup', async (t) => {
      // No pid namespace: the init's background child outlives it, in the container's cgroup.
      const pidFile = join(rt.work, `child-${n}.pid`);
      const id = stopped(rt, `sleep 1000 & echo $! > /out/${pidFile.split('/').pop()}; exit 0`, (s) => {
        s.linux!.namespaces = s.linux!.namespaces!.filter((ns) => ns.type !== 'pid');
        s.mounts!.push({ destination: '/out', type: 'bind', source: rt.work, options: ['rbind'] });
      });
      for (let i = 0; i < 100 && !existsSync(pidFile); i++) spawnSync('sleep', ['0.02']);
      const child = Number(readFileSync(pidFile, 'utf8'));
      t.notOk(isDead(child), 'the child outlived the init');
      const r = rt.run(['kill', '--all', id, 'KILL']);
      t.equal(r.status, 0, r.stderr);
      for (let i = 0; i < 100 && !isDead(child); i++) spawnSync('sleep', ['0.02']);
      t.ok(isDead(child), 'the leftover process got the signal');
      rt.ok(['delete', id]);
    });

    t.test('kill KILL of a paused container kills it (the cgroup is thawed)', async (t) => {
      const id = `k${n++}`;
      const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; }, id);
      rt.ok(['run', '--detach', '--bundle', b.dir, id]);
      rt.ok(['pause', id]);
      t.equal(rt.state(id).status, 'paused');
      const r = rt.run(['kill', id, 'KILL']);
      t.equal(r.status, 0, r.stderr);
      rt.waitStatus(id, 'stopped');
      rt.ok(['delete', id]);
    });

    t.test("exec's own failures exit 255 (a process's status is not taken for them)", async (t) => {
      const id = stopped(rt);
      const r = rt.run(['exec', id, 'true']);
      t.equal(r.status, 255, 'exec in a stopped container');
      t.match(r.stderr, /cannot exec in a stopped container/);
      t.equal(rt.run(['exec', 'nope', 'true']).status, 255, 'exec in an unknown container');
      rt.ok(['delete', id]);
    });

    t.test('an unknown container: "does not exist" (the shim ignores it on delete, podman and CRI-O on state)', async (t) => {
      for (const args of [['state', 'nope'], ['kill', 'nope', '9'], ['kill', '--all', 'nope', '9'], ['delete', 'nope'], ['start', 'nope']]) {
        const r = rt.run(args);
        t.equal(r.status, 1, args.join(' '));
        t.match(r.stderr, /does not exist/, args.join(' '));
      }
      t.equal(rt.run(['delete', '--force', 'nope']).status, 0, 'delete --force of an unknown container succeeds');
    });

    t.test('delete of a created container without --force kills its init and deletes it (containerd does it)', async (t) => {
      const id = `k${n++}`;
      const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; }, id);
      rt.ok(['create', '--bundle', b.dir, id]);
      const pid = rt.state(id).pid;
      t.equal(rt.state(id).status, 'created');
      const r = rt.run(['delete', id]);
      t.equal(r.status, 0, r.stderr);
      t.ok(isDead(pid), 'the waiting init was killed');
      t.match(rt.run(['state', id]).stderr, /does not exist/);
    });

    t.test('delete of a running container without --force is refused; with --force it goes', async (t) => {
      const id = `k${n++}`;
      const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; }, id);
      rt.ok(['run', '--detach', '--bundle', b.dir, id]);
      const r = rt.run(['delete', id]);
      t.equal(r.status, 1);
      t.match(r.stderr, /cannot delete container \S+ that is not stopped: running/);
      t.equal(rt.run(['delete', '--force', id]).status, 0);
    });

    t.test('create of an id in use: "already exists"', async (t) => {
      const id = `k${n++}`;
      const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; }, id);
      rt.ok(['create', '--bundle', b.dir, id]);
      const r = rt.run(['create', '--bundle', b.dir, id]);
      t.equal(r.status, 1);
      t.match(r.stderr, /already exists/);
      rt.ok(['delete', '--force', id]);
    });

    t.test('the error is the last "error" line of --log (the shim shows it from there)', async (t) => {
      const id = stopped(rt);
      const log = join(rt.work, `log-${n}.json`);
      const r = spawnSync(rt.bin, ['--root', rt.root, '--log', log, '--log-format', 'json', 'kill', id, '9'], { encoding: 'utf8' });
      t.equal(r.status, 1);
      const last = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.level === 'error').pop();
      t.match(last?.msg, /container not running/);
      rt.ok(['delete', id]);
    });
  });
}

t.test('nothing left behind', async (t) => {
  for (const [, rt] of runtimes) {
    for (const id of stateDirs(rt.root)) rt.run(['delete', '--force', id]);
    t.same(stateDirs(rt.root), [], `${rt.bin}: no state left`);
  }
  residue(t);
});
