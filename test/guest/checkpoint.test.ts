/**
 * Checkpoint and restore with criu (`pocrun checkpoint`, `pocrun restore`), in the guest: Debian's criu 3.17
 * works on its 6.1 kernel and fails on the host's (test/integration/checkpoint.test.ts holds the host's clear
 * error). One container does most of the checks, to keep the emulated guest's time short: a counter in memory
 * (written to /count each tick) and an established TCP connection on its loopback (a client sending a line
 * each tick to a server writing them to /recv).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, setup, TEST_CGROUP_PARENT } from '../helpers/runtime.js';

const { work, rt, residue } = setup();

const COUNTER = [
  'exec </dev/null >/dev/null 2>&1',
  'ip link set lo up',
  // The server's stdin never ends (busybox nc stops at its end), so the connection lasts.
  'sleep 1000000 | nc -l -p 5000 >/recv &',
  'sleep 0.5',
  '(j=0; while :; do j=$((j+1)); echo "line $j"; sleep 0.2; done) | nc 127.0.0.1 5000 &',
  'i=0; while :; do i=$((i+1)); echo $i >/count; sleep 0.2; done',
].join('\n');

const main = makeBundle(work, (s) => {
  s.process!.args = ['sh', '-c', COUNTER];
  // CAP_NET_ADMIN, to bring up the loopback of its network namespace (as podman's and containerd's do).
  for (const set of ['bounding', 'effective', 'permitted'] as const) s.process!.capabilities![set]!.push('CAP_NET_ADMIN');
}, 'main');

/** A copy of the bundle with a cgroup of its own, for a restore next to the original. */
function copyBundle(name: string): string {
  const dir = join(work, name);
  cpSync(main.dir, dir, { recursive: true, verbatimSymlinks: true });
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  spec.linux.cgroupsPath = `/${TEST_CGROUP_PARENT}/${name}`;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  return dir;
}

const count = (bundle: string) => Number(readFileSync(join(bundle, 'rootfs/count'), 'utf8').trim() || 0);
const received = (bundle: string) => readFileSync(join(bundle, 'rootfs/recv'), 'utf8').split('\n').filter(Boolean).length;

/** Waits (bounded) until the counter of a bundle's container passes `above`, and returns it. */
async function countAbove(bundle: string, above: number, what: string): Promise<number> {
  for (let i = 0; i < 300; i++) {
    try {
      const n = count(bundle);
      if (n > above) return n;
    } catch {
      /* not written yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: the counter of ${bundle} did not pass ${above}`);
}

async function receivedAbove(bundle: string, above: number, what: string): Promise<number> {
  for (let i = 0; i < 300; i++) {
    const n = existsSync(join(bundle, 'rootfs/recv')) ? received(bundle) : 0;
    if (n > above) return n;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: the TCP server in ${bundle} received no more than ${above} lines`);
}

const CR = ['--tcp-established'];

t.test('the guest has criu, and features says checkpoint is there', async (t) => {
  t.equal(process.env.POC_GUEST, '1', 'runs in the guest (scripts/guest/test.sh), never on the host');
  const annotations = JSON.parse(rt.ok(['features'])).annotations;
  t.equal(annotations['io.github.pocrun.checkpoint.enabled'], 'true');
  t.match(annotations['io.github.pocrun.checkpoint.criu'], /criu 3\.\d+/);
});

t.test('one container: pre-dump, dump, restore, --leave-running, a second restore beside it, checkpoint again', async (t) => {
  rt.ok(['run', '-d', '--bundle', main.dir, 'cr1']);
  await countAbove(main.dir, 3, 'started');
  await receivedAbove(main.dir, 2, 'started');

  // A pre-dump leaves it running; the dump after it takes only what changed since (--parent-path).
  const pre = join(work, 'pre');
  rt.ok(['checkpoint', ...CR, '--pre-dump', '--image-path', pre, 'cr1']);
  t.equal(rt.state('cr1').status, 'running', 'running after --pre-dump');
  t.ok(existsSync(join(pre, 'pages-1.img')), 'the pre-dump wrote memory pages');
  const img1 = join(work, 'img1');
  rt.ok(['checkpoint', ...CR, '--parent-path', '../pre', '--image-path', img1, 'cr1']);
  t.ok(existsSync(join(img1, 'inventory.img')) && existsSync(join(img1, 'descriptors.json')), 'images and descriptors.json');
  t.equal(rt.run(['state', 'cr1']).status, 1, 'checkpointed without --leave-running: the container is gone');
  const atDump = count(main.dir);

  // Restored under its own id: the counter goes on from where it was, and so does the TCP connection.
  const pidFile = join(work, 'cr1.pid');
  rt.ok(['restore', ...CR, '--detach', '--bundle', main.dir, '--image-path', img1, '--pid-file', pidFile, 'cr1']);
  const state = rt.state('cr1');
  t.equal(state.status, 'running', 'restored: running');
  t.equal(Number(readFileSync(pidFile, 'utf8')), state.pid, '--pid-file has the restored init');
  const lines = received(main.dir);
  const after = await countAbove(main.dir, atDump, 'restored');
  t.ok(after > atDump && after < atDump + 50, `the counter went on from ${atDump} (now ${after}), not from 1`);
  t.ok((await receivedAbove(main.dir, lines, 'restored')) > lines, 'the established connection carries on after restore');
  t.match(rt.ok(['exec', 'cr1', 'cat', '/count']), /^\d+\n$/, 'exec works in the restored container');
  t.match(rt.ok(['ps', 'cr1']), /nc -l -p 5000/, 'ps lists its processes');

  // --leave-running: it goes on, and its images make a second container beside it, from a copy of its bundle.
  // criu checks that the files the processes hold open (/recv) have the size they had at the dump: the
  // container is paused meanwhile, as for a migration, and the copy is made before it resumes.
  const img2 = join(work, 'img2');
  rt.ok(['pause', 'cr1']);
  rt.ok(['checkpoint', ...CR, '--leave-running', '--image-path', img2, 'cr1']);
  t.equal(rt.state('cr1').status, 'paused', 'a paused container is checkpointed and left paused');
  const twin = copyBundle('twin');
  const before = count(main.dir);
  rt.ok(['resume', 'cr1']);
  t.equal(rt.state('cr1').status, 'running', 'still running after --leave-running');
  await countAbove(main.dir, before, 'left running');
  rt.ok(['restore', ...CR, '-d', '--bundle', twin, '--image-path', img2, 'cr2']);
  t.equal(rt.state('cr2').status, 'running', 'the second container runs');
  t.not(rt.state('cr2').pid, rt.state('cr1').pid);
  const twinCount = await countAbove(twin, 1, 'twin');
  t.ok(twinCount >= before - 1, `the twin's counter starts where the original was (${before}), at ${twinCount}`);

  // A restored container can be checkpointed and restored again.
  const img3 = join(work, 'img3');
  const n = count(twin);
  rt.ok(['checkpoint', ...CR, '--image-path', img3, 'cr2']);
  rt.ok(['restore', ...CR, '-d', '--bundle', twin, '--image-path', img3, 'cr2']);
  t.ok((await countAbove(twin, n, 'restored twice')) > n, 'the twin counts on after a second checkpoint');

  rt.ok(['kill', 'cr2', 'KILL']);
  rt.waitStatus('cr2', 'stopped');
  rt.ok(['delete', 'cr2']);
  rt.ok(['delete', '--force', 'cr1']);

  // A damaged image: a clear error, and nothing made (the residue check below holds it).
  const broken = join(work, 'broken');
  cpSync(img2, broken, { recursive: true });
  const core = readdirSync(broken).find((f) => /^core-\d+\.img$/.test(f))!;
  truncateSync(join(broken, core), 10);
  const r = rt.run(['restore', ...CR, '-d', '--bundle', twin, '--image-path', broken, 'cr3']);
  t.not(r.status, 0, 'a damaged image fails');
  t.match(r.stderr, /restore container "cr3": criu failed: .+/, `criu's error is named: ${r.stderr.trim()}`);
  t.equal(rt.run(['state', 'cr3']).status, 1, 'no container is left');
  rmSync(join(broken, 'inventory.img'));
  t.match(rt.run(['restore', '-d', '--bundle', twin, '--image-path', broken, 'cr3']).stderr, /holds no checkpoint \(no inventory\.img\)/);
});

/**
 * An engine's end of a container's terminal (test/helpers/console-socket.py): listens on a socket, writes `input`
 * to the pty master it receives and copies what the container prints to a file until the pty closes.
 */
async function consoleListener(name: string, input: string) {
  const sock = join(work, `${name}.sock`);
  const output = join(work, `${name}.out`);
  writeFileSync(join(work, `${name}.in`), input);
  const listener = spawn('python3', [join(import.meta.dirname, '../helpers/console-socket.py'), sock, join(work, `${name}.in`), output, '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise((resolve) => listener.stdout!.once('data', resolve));
  const exited = new Promise((resolve) => listener.once('exit', resolve));
  return { sock, output, exited, text: () => (existsSync(output) ? readFileSync(output, 'utf8') : ''), stop: () => listener.kill() };
}

const lastTick = (text: string) => Math.max(0, ...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));

async function until(what: string, check: () => boolean) {
  for (let i = 0; i < 300; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

t.test('a container with a terminal: checkpointed, and restored on a new pty sent to --console-socket', async (t) => {
  // A counter printing to the terminal, and a reader answering what is typed on it.
  const tty = makeBundle(work, (s) => {
    s.process!.terminal = true;
    s.process!.args = ['sh', '-c', '(i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.2; done) & while read l; do echo "got $l"; done'];
  }, 'tty');
  const first = await consoleListener('console1', 'hello\n');
  rt.ok(['run', '-d', '--console-socket', first.sock, '--bundle', tty.dir, 'crtty']);
  await until('ticks on the first terminal', () => lastTick(first.text()) > 3 && /got hello/.test(first.text()));

  const img = join(work, 'img-tty');
  rt.ok(['checkpoint', '--image-path', img, 'crtty']);
  t.ok(existsSync(join(img, 'terminal.json')), "the pty slave's key is kept beside the images");
  await first.exited;
  const atDump = lastTick(first.text());

  const missing = rt.run(['restore', '-d', '--bundle', tty.dir, '--image-path', img, 'crtty']);
  t.match(missing.stderr, /with a terminal: its new one goes to --console-socket, which is missing/, 'without --console-socket: a clear error');
  t.equal(rt.run(['state', 'crtty']).status, 1, 'and no container');

  const second = await consoleListener('console2', 'again\n');
  rt.ok(['restore', '-d', '--console-socket', second.sock, '--bundle', tty.dir, '--image-path', img, 'crtty']);
  t.equal(rt.state('crtty').status, 'running', 'restored: running');
  await until('ticks on the new terminal', () => lastTick(second.text()) > atDump + 2 && /got again/.test(second.text()));
  const firstAfter = Math.min(...[...second.text().matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
  t.ok(firstAfter > atDump - 10 && firstAfter <= atDump + 10, `the counter goes on on the new pty from ${atDump} (first tick there: ${firstAfter})`);
  t.match(second.text(), /got again/, 'what is typed on the new pty reaches the restored reader');
  t.match(rt.ok(['exec', 'crtty', 'sh', '-c', 'readlink /proc/1/fd/0']), /^\/dev\/pts\/\d+\n$/, "the restored init's stdin is a pty");

  rt.ok(['kill', 'crtty', 'KILL']);
  rt.waitStatus('crtty', 'stopped');
  rt.ok(['delete', 'crtty']);
  second.stop();
  await second.exited;
});

t.test('nothing left behind', async (t) => residue(t));
