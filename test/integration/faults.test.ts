import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDead, makeBundle, POCRUN, Runtime, setup, stateDirs, TEST_CGROUP_PARENT } from '../helpers/runtime.js';

const { work, rt, residue } = setup();

/** The steps of create at which pocrun can be killed (src/runtime/create-container.ts, init-helper.ts). */
const CREATE_STEPS = [
  'config loaded and validated', 'plan compiled', 'state directory made', 'cgroup made', 'helper spawned',
  'resources applied', 'plan sent', 'helper: sync hooks', 'created', 'state written',
];

t.test('pocrun SIGKILLed at each step of create: delete --force recovers and nothing is left', async (t) => {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sleep', '1000'];
    s.hooks = { createRuntime: [{ path: '/bin/true' }] }; // so that the `sync hooks` point exists
  });
  for (const [i, step] of CREATE_STEPS.entries()) {
    const id = `k${i}`;
    const r = rt.run(['create', '--bundle', b.dir, id], { env: { ...process.env, POCRUN_DEBUG_KILL_AT: step }, stdio: ['ignore', 'ignore', 'ignore'] });
    t.equal(r.signal, 'SIGKILL', `${step}: pocrun was killed there`);
    // Validated and planned before anything is made.
    if (i < CREATE_STEPS.indexOf('state directory made')) t.notOk(existsSync(join(rt.root, id)), `${step}: nothing made yet`);
    const state = rt.run(['state', id]);
    if (existsSync(join(rt.root, id, 'state.json'))) {
      t.equal(state.status, 0, `${step}: state reads`);
      t.match(JSON.parse(state.stdout).status, /^(creating|created)$/, `${step}: status is creating or created`);
    }
    const del = rt.run(['delete', '--force', id]);
    t.equal(del.status, 0, `${step}: delete --force recovers: ${del.stderr}`);
    t.notOk(existsSync(join(rt.root, id)), `${step}: state directory gone`);
    for (const c of ['memory', 'pids', 'freezer']) {
      t.notOk(existsSync(`/sys/fs/cgroup/${c}/${TEST_CGROUP_PARENT}/${b.dir.split('/').pop()}`), `${step}: ${c} cgroup gone`);
    }
  }
});

t.test('the init SIGKILLed: state says stopped and delete cleans up', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  rt.ok(['run', '-d', '--bundle', b.dir, 'ki']);
  const { pid } = rt.state('ki');
  process.kill(pid, 'SIGKILL');
  rt.waitStatus('ki', 'stopped');
  rt.ok(['delete', 'ki']);
  t.ok(isDead(pid));
});

t.test('a full disk under --root: a clear error and nothing left', async (t) => {
  const small = join(work, 'small');
  mkdirSync(small);
  spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', small]);
  t.teardown(() => void spawnSync('umount', [small]));
  spawnSync('dd', ['if=/dev/zero', `of=${join(small, 'fill')}`, 'bs=4k', 'count=100'], { stdio: 'ignore' });
  const full = new Runtime(small);
  const b = makeBundle(work, (s) => { s.process!.args = ['true']; });
  // Pipes, not the usual output file (which would be on the full disk): a failed create keeps no container.
  const r = full.run(['create', '--bundle', b.dir, 'disk'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.not(r.status, 0);
  t.match(r.stderr, /No space left on device/);
  t.notOk(existsSync(join(small, 'root', 'disk')), 'no state directory');
});

t.test('two commands on one container at once: one wins cleanly, state.json never corrupt', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  for (let i = 0; i < 10; i++) {
    const id = `race${i}`;
    rt.ok(['create', '--bundle', b.dir, id]);
    const [start, del] = await Promise.all([pocrunAsync(['start', id]), pocrunAsync(['delete', '--force', id])]);
    t.equal(del, 0, 'delete --force always succeeds');
    t.ok(start === 0 || start === 1, 'start either ran or failed cleanly');
    t.notOk(existsSync(join(rt.root, id)), 'container gone');
  }
  for (let i = 0; i < 10; i++) {
    const id = `race-kill${i}`;
    rt.ok(['run', '-d', '--bundle', b.dir, id]);
    const [kill, del] = await Promise.all([pocrunAsync(['kill', id, 'KILL']), pocrunAsync(['delete', '--force', id])]);
    t.equal(del, 0);
    t.ok(kill === 0 || kill === 1);
    const state = rt.run(['state', id]);
    t.match(state.stderr, /does not exist/, 'state reads cleanly afterwards');
  }
});

t.test('create/start/delete cycles: no growth in fds, mounts or cgroups; time per cycle reported', async (t) => {
  const cycles = Number(process.env.POCRUN_CYCLES ?? 100);
  const b = makeBundle(work, (s) => { s.process!.args = ['true']; });
  const fds = () => readdirSync('/proc/self/fd').length;
  // Only mounts that involve this test's files: other suites (and people) may mount at the same time.
  const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(work)).length;
  const before = { fds: fds(), mounts: mounts() };
  const times: number[] = [];
  for (let i = 0; i < cycles; i++) {
    const t0 = performance.now();
    rt.ok(['create', '--bundle', b.dir, `cy${i}`]);
    rt.ok(['start', `cy${i}`]);
    rt.waitStatus(`cy${i}`, 'stopped');
    rt.ok(['delete', `cy${i}`]);
    times.push(performance.now() - t0);
  }
  t.equal(fds(), before.fds, 'no fd growth');
  t.equal(mounts(), before.mounts, 'no mount growth');
  t.same(stateDirs(rt.root), [], 'no state left');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const tenth = Math.max(1, Math.floor(cycles / 10));
  const first = median(times.slice(0, tenth));
  const last = median(times.slice(-tenth));
  t.comment(`${cycles} cycles: median of the first ${tenth} ${first.toFixed(1)} ms, of the last ${tenth} ${last.toFixed(1)} ms`);
  // Reported, not asserted: time depends on the machine's load (benchmarks measure speed, tests behaviour).
});

function pocrunAsync(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const p = spawn(POCRUN, ['--root', rt.root, ...args], { stdio: 'ignore' });
    p.on('exit', (code) => resolve(code));
  });
}

t.test('nothing left behind', async (t) => residue(t));
