/**
 * Checkpoint and restore where criu cannot work: it is missing, or `criu check` fails (as Debian's criu 3.17 on
 * this host's 6.18 kernel: "vdso: Unexpected rt vDSO area bounds"). Each is one clear error naming the cause,
 * and nothing is left behind: the container runs on, no image directory, no half-restored container. A stand-in
 * criu (a shell script given with --criu, runc's global flag) makes both cases the same on every machine. The
 * working checkpoint and restore are tested in the guest, where criu works (test/guest/checkpoint.test.ts).
 */
import t from 'tap';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, POCRUN_TS, Runtime, setup } from '../helpers/runtime.js';

const { work, rt, residue } = setup();

/** A criu whose `check` fails as Debian's criu 3.17 does on kernel 6.18, and whose dump and restore fail. */
const fakeCriu = join(work, 'criu');
writeFileSync(fakeCriu, `#!/bin/sh
case "$1" in
  --version) echo "Version: 3.17.1" ;;
  check) echo "Error (criu/vdso.c:293): vdso: Unexpected rt vDSO area bounds" >&2; echo "Looks bad." >&2; exit 1 ;;
  *) exit 1 ;;
esac
`);
chmodSync(fakeCriu, 0o755);

/** A criu whose RPC service (`criu swrk FD`) says where it runs, then reads its socket until the end, as criu does. */
const listeningCriu = join(work, 'criu-swrk');
writeFileSync(listeningCriu, `#!/bin/sh
[ "$1" = swrk ] || exit 1
echo "$$ $2" > ${JSON.stringify(join(work, 'swrk.pid'))}
exec cat <&$2 >/dev/null
`);
chmodSync(listeningCriu, 0o755);

const bundle = makeBundle(work, (s) => {
  s.process!.args = ['sleep', '1000'];
});

t.test('checkpoint --help exits 0 (podman probes the runtime with it) and names runc\'s flags', async (t) => {
  const out = rt.ok(['checkpoint', '--help']);
  for (const flag of ['--image-path', '--work-path', '--parent-path', '--leave-running', '--pre-dump', '--tcp-established', '--manage-cgroups-mode']) t.match(out, flag);
  t.match(rt.ok(['restore', '--help']), /--detach.*--pid-file/s);
});

t.test('without criu, or where criu check fails: one clear error, the container runs on, no images', async (t) => {
  rt.ok(['run', '-d', '--bundle', bundle.dir, 'c1']);
  const images = join(work, 'images');

  const missing = rt.run(['checkpoint', '--image-path', images, 'c1'], { env: { ...process.env, PATH: join(work, 'no-such-dir') } });
  t.equal(missing.status, 1);
  t.match(missing.stderr, /^pocrun: checkpoint\/restore needs criu \(https:\/\/criu\.org\), which is not installed: no criu on \$PATH/);
  const wrongPath = rt.run(['--criu', join(work, 'nothing'), 'checkpoint', '--image-path', images, 'c1']);
  t.match(wrongPath.stderr, /--criu .*nothing is not an executable/);

  const broken = rt.run(['--criu', fakeCriu, 'checkpoint', '--image-path', images, 'c1']);
  t.equal(broken.status, 1);
  t.match(broken.stderr, /checkpoint container "c1": criu cannot work on this host: "criu check" fails: .*vdso: Unexpected rt vDSO area bounds/);
  t.equal(rt.state('c1').status, 'running', 'the container runs on');
  t.notOk(existsSync(images), 'the image directory it made is gone again');

  t.match(rt.run(['checkpoint', '--manage-cgroups-mode', 'sometimes', 'c1']).stderr, /--manage-cgroups-mode "sometimes": use soft, full, strict, ignore/);
  t.match(rt.run(['checkpoint', '--empty-ns', 'ipc', 'c1']).stderr, /--empty-ns "ipc": only "network"/);
  t.match(rt.run(['checkpoint', '--lazy-pages', 'c1']).stderr, /--lazy-pages is not supported/);
  t.match(rt.ok(['features']), /"io\.github\.pocrun\.checkpoint\.enabled": "true"/);
  rt.ok(['delete', '--force', 'c1']);
});

t.test("checkpoint's criu, started by the front: its RPC socket at the given fd, and gone when the command fails before asking it", async (t) => {
  const r = rt.run(['--criu', listeningCriu, 'checkpoint', '--image-path', join(work, 'never'), 'no-such-container']);
  t.equal(r.status, 1);
  t.match(r.stderr, /no-such-container/);
  const [pid, fd] = readFileSync(join(work, 'swrk.pid'), 'utf8').trim().split(' ').map(Number);
  t.ok(fd! > 2, `criu got the socket as fd ${fd}`);
  for (let i = 0; i < 200 && existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 25));
  t.notOk(existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')), 'criu read the end of its socket and exited');
  t.notOk(existsSync(join(work, 'never')), 'no image directory');
  const alone = new Runtime(work, POCRUN_TS).run(['checkpoint', 'no-such-container']);
  t.equal(alone.status, 1);
  t.match(alone.stderr, /checkpoint needs criu started by pocrun's native front \(dist\/pocrun\).*run pocrun, not pocrun-ts/);
});

t.test('restore where criu check fails: one clear error, no container, cgroup or mount left', async (t) => {
  const images = join(work, 'fake-images');
  mkdirSync(images);
  writeFileSync(join(images, 'inventory.img'), '');
  writeFileSync(join(images, 'descriptors.json'), '["/dev/null","pipe:[1]","pipe:[1]"]');
  const r = rt.run(['--criu', fakeCriu, 'restore', '-d', '--bundle', bundle.dir, '--image-path', images, 'c2']);
  t.equal(r.status, 1);
  t.match(r.stderr, /restore container "c2": criu cannot work on this host: "criu check" fails: .*vdso/);
  t.equal(rt.run(['state', 'c2']).status, 1, 'no container c2');
  const none = rt.run(['restore', '-d', '--bundle', bundle.dir, '--image-path', join(work, 'nowhere'), 'c2']);
  t.match(none.stderr, /nowhere holds no checkpoint \(no inventory\.img\)/);
  const noCriu = rt.run(['restore', '-d', '--bundle', bundle.dir, '--image-path', images, 'c2'], { env: { ...process.env, PATH: join(work, 'no-such-dir') } });
  t.match(noCriu.stderr, /needs criu/);

  // A checkpoint of a container with a terminal (its pty slave's key beside the images) needs --console-socket
  // for its new pty, and one without a terminal refuses it; a socket nobody listens on is create's error.
  const socketFor = rt.run(['--criu', fakeCriu, 'restore', '-d', '--console-socket', join(work, 'none.sock'), '--bundle', bundle.dir, '--image-path', images, 'c2']);
  t.match(socketFor.stderr, /--console-socket: the checkpoint in .* is of a container without a terminal/);
  writeFileSync(join(images, 'terminal.json'), '{"key":"tty[8800:2a]"}');
  const noSocket = rt.run(['--criu', fakeCriu, 'restore', '-d', '--bundle', bundle.dir, '--image-path', images, 'c2']);
  t.match(noSocket.stderr, /is of a container with a terminal: its new one goes to --console-socket, which is missing/);
  const deaf = rt.run(['--criu', fakeCriu, 'restore', '-d', '--console-socket', join(work, 'none.sock'), '--bundle', bundle.dir, '--image-path', images, 'c2']);
  t.match(deaf.stderr, /connect console socket \(config\.json \/process\/terminal\): connect .*none\.sock: No such file or directory/);
  t.equal(rt.run(['state', 'c2']).status, 1, 'no container c2 after any of them');
});

t.test('nothing left behind', async (t) => residue(t));
