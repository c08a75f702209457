// Admission (src/native/front/admission.c, src/runtime/admission.ts): create, run and exec wait in the native
// front for one of 2 slots per CPU, and the TypeScript program lets its slot go once the container is created,
// before any hook, and whatever happens. The slots are watched and taken from outside with test/helpers/slots.py.
import t from 'tap';
import { existsSync, readFileSync, readlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { ADMISSION_SLOTS, freeSlots, makeBundle, POCRUN, setup, SLOTS_PY } from '../helpers/runtime.js';

const { work, rt, residue } = setup();
const SLOTS = ADMISSION_SLOTS;
const all = Array.from({ length: SLOTS }, (_, i) => i);

/** Takes the given slots until the returned function is called. */
async function hold(slots: number[]): Promise<() => Promise<void>> {
  const holder = spawn('python3', [SLOTS_PY, 'hold', rt.root, ...slots.map(String)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await new Promise<string>((resolve) => holder.stdout.once('data', (d) => resolve(String(d))));
  if (first.trim() !== 'held') throw new Error(`slots ${slots.join(',')}: ${first}`);
  return async () => {
    holder.stdin.end();
    await new Promise((resolve) => holder.once('exit', resolve));
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pocrun(args: string[]): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(POCRUN, ['--root', rt.root, ...args], { stdio: 'ignore' });
  return { child, done: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

t.test('with every slot taken, create waits in the native front, and goes in when one frees', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  const release = await hold(all);
  const create = pocrun(['create', '--bundle', b.dir, 'a1']);
  let exited = false;
  void create.done.then(() => (exited = true));
  await sleep(600);
  t.notOk(exited, 'create is still waiting');
  t.equal(readlinkSync(`/proc/${create.child.pid}/exe`), POCRUN, 'in the native front, not in the TypeScript program');
  t.notOk(existsSync(join(rt.root, 'a1')), 'nothing made yet');
  await release();
  t.equal(await create.done, 0, 'create went in once the slots were free');
  t.equal(rt.state('a1').status, 'created');
  t.equal(freeSlots(rt.root), SLOTS, 'create let its slot go');
  rt.ok(['delete', '--force', 'a1']);
});

t.test('a running `pocrun run` and a foreground exec hold no slot', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['sleep', '1000']; });
  const run = pocrun(['run', '--bundle', b.dir, 'a2']);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !(existsSync(join(rt.root, 'a2/state.json')) && rt.state('a2').status === 'running')) await sleep(20);
  t.equal(rt.state('a2').status, 'running');
  t.equal(freeSlots(rt.root), SLOTS, 'every slot is free while the container runs');

  // exec waits for a slot like create, and lets it go once its process runs.
  const release = await hold(all);
  const exec = pocrun(['exec', 'a2', 'sleep', '1000']);
  await sleep(400);
  t.equal(readlinkSync(`/proc/${exec.child.pid}/exe`), POCRUN, 'exec waits in the native front');
  await release();
  const start = Date.now();
  while (Date.now() - start < 10_000 && !/sleep 1000[\s\S]*sleep 1000/.test(rt.ok(['ps', 'a2', '-o', 'pid,args']))) await sleep(20);
  t.equal(freeSlots(rt.root), SLOTS, 'every slot is free while the exec runs');
  exec.child.kill('SIGKILL');
  rt.ok(['kill', 'a2', 'KILL']);
  t.equal(await run.done, 137, 'run ends with the container');
  await exec.done;
  t.notOk(existsSync(join(rt.root, 'a2')), 'run deleted its container');
});

t.test('a hook runs after its create let the slot go', async (t) => {
  // Every slot but one is taken: the create takes the last, and its createRuntime hook must find it free
  // again, or a hook that starts a container would wait for its own parent.
  const out = join(work, 'free-in-hook');
  const hook = join(work, 'count-free.sh');
  writeFileSync(hook, `#!/bin/sh\nexec python3 ${SLOTS_PY} free ${rt.root} ${SLOTS} > ${out}\n`);
  chmodSync(hook, 0o755);
  const b = makeBundle(work, (s) => {
    s.process!.args = ['true'];
    s.hooks = { createRuntime: [{ path: hook }] };
  });
  const release = await hold(all.slice(1));
  try {
    rt.ok(['create', '--bundle', b.dir, 'a3']);
  } finally {
    await release();
  }
  t.equal(readFileSync(out, 'utf8').trim(), '1', 'the hook found the slot free');
  rt.ok(['delete', '--force', 'a3']);
});

t.test('a wait for a slot is bounded: a holder that never lets go slows create down, never stops it', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['true']; });
  const release = await hold(all);
  const start = Date.now();
  try {
    const create = pocrun(['create', '--bundle', b.dir, 'a4']);
    t.equal(await create.done, 0, 'create went in without a slot');
  } finally {
    await release();
  }
  const waited = Date.now() - start;
  t.ok(waited >= 4500, `it waited the limit first (${waited} ms)`);
  rt.ok(['delete', '--force', 'a4']);
});

t.test('a command that fails early lets its slot go, and leaves only the root\'s slot file', async (t) => {
  const r = rt.run(['create', '--bundle', join(work, 'no-such-bundle'), 'a5']);
  t.not(r.status, 0);
  t.match(r.stderr, /no-such-bundle/);
  t.equal(freeSlots(rt.root), SLOTS);
  t.notOk(existsSync(join(rt.root, 'a5')));
});

t.test('residue', async (t) => residue(t));
