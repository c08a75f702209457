import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, setup, Runtime } from '../helpers/runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';
import type { Test } from 'tap';

const { work, rt, residue } = setup();
let n = 0;

/** Every failure: one line on stderr that matches, a non-zero exit, and no state directory left. */
function fails(t: Test, args: string[], re: RegExp, name: string, runtime: Runtime = rt): void {
  const r = runtime.run(args);
  t.not(r.status, 0, `${name}: exits non-zero`);
  t.match(r.stderr, re, `${name}: says why`);
  t.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line`);
}

t.test('bad configs are refused before anything is made', async (t) => {
  const cases: [string, (s: Spec) => void, RegExp][] = [
    ['empty args', (s) => { s.process!.args = []; }, /config\.json \/process\/args: must be a non-empty array/],
    ['uid a string', (s) => { (s.process!.user as { uid: unknown }).uid = 'root'; }, /config\.json \/process\/user\/uid: must be an integer/],
    ['relative cwd', (s) => { s.process!.cwd = 'home'; }, /config\.json \/process\/cwd: must be an absolute path/],
    ['unknown mount type', (s) => { s.mounts!.push({ destination: '/x', type: 'nosuchfs', source: 'x' }); }, /\/mounts\/7\/type: unknown filesystem type "nosuchfs"/],
    ['relative destination', (s) => { s.mounts!.push({ destination: 'x', type: 'tmpfs', source: 'x' }); }, /\/mounts\/7\/destination: must be an absolute path/],
    ['destination climbing out', (s) => { s.mounts!.push({ destination: '/../../etc', type: 'tmpfs', source: 'x' }); }, /\/mounts\/7\/destination: must not contain "\.\."/],
    ['device outside /dev', (s) => { s.linux!.devices = [{ path: '/etc/null', type: 'c', major: 1, minor: 3 }]; }, /\/linux\/devices\/0\/path: device path must be under \/dev/],
    ['uid map without user namespace', (s) => { s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]; }, /uid and gid mappings need a user namespace/],
    ['missing rootfs', (s) => { s.root!.path = 'nowhere'; }, /config\.json \/root\/path: rootfs .*nowhere does not exist/],
  ];
  for (const [name, change, re] of cases) {
    const b = makeBundle(work, change);
    fails(t, ['create', '--bundle', b.dir, `bad${n++}`], re, name);
  }
});

t.test('a config that cannot be planned changes nothing: no state directory or cgroup is made', async (t) => {
  // A fresh --root, and a cgroup below parents that do not exist: making the cgroup makes them.
  mkdirSync(join(work, 'unplanned'));
  const fresh = new Runtime(join(work, 'unplanned'));
  const parent = `pocrun-test-unplanned-${process.pid}`;
  const parents = existsSync('/sys/fs/cgroup/cgroup.controllers')
    ? [join('/sys/fs/cgroup', parent)]
    : readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c, parent));
  t.teardown(() => { for (const dir of parents) spawnSync('rmdir', [join(dir, 'x'), dir]); });
  const cases: [string, (s: Spec) => void, RegExp][] = [
    ['hostname without a UTS namespace', (s) => { s.linux!.namespaces = s.linux!.namespaces!.filter((ns) => ns.type !== 'uts'); s.hostname = 'h'; }, /config\.json \/hostname: setting the hostname needs a UTS namespace/],
    ['a sysctl that is not namespaced', (s) => { s.linux!.sysctl = { 'vm.swappiness': '1' }; }, /\/linux\/sysctl\/vm\.swappiness: sysctl vm\.swappiness is not namespaced/],
    ['an unknown capability', (s) => { s.process!.capabilities!.bounding = ['CAP_NOPE']; }, /\/process\/capabilities\/bounding: unknown capability "CAP_NOPE"/],
    ['a NUL in an argument', (s) => { s.process!.args = ['sh', 'a\u0000b']; }, /\/process\/args/],
  ];
  for (const [name, change, re] of cases) {
    const id = `unplanned${n++}`;
    const b = makeBundle(work, (s) => { change(s); s.linux!.cgroupsPath = `/${parent}/x/${id}`; });
    fails(t, ['create', '--bundle', b.dir, id], re, name, fresh);
    // The root holds only the native front's admission slots (made before the TypeScript program runs).
    t.same(readdirSync(fresh.root).filter((e) => e !== '.create-slots'), [], `${name}: no state directory made`);
    for (const dir of parents) t.notOk(existsSync(dir), `${name}: no cgroup made (${dir})`);
  }
});

t.test('a rootfs that is a file, invalid JSON, huge and deep JSON, invalid UTF-8', async (t) => {
  const b = makeBundle(work, (s) => { s.root!.path = 'rootfile'; });
  writeFileSync(join(b.dir, 'rootfile'), 'not a directory');
  fails(t, ['create', '--bundle', b.dir, 'rf'], /rootfs .*rootfile is not a directory/, 'rootfs is a file');
  const docs: [string, Buffer, RegExp][] = [
    ['invalid JSON', Buffer.from('{"ociVersion": '), /config\.json is not valid JSON/],
    ['100 MB of JSON', Buffer.alloc(100 * 1024 * 1024, 0x20), /config\.json is too large/],
    ['deeply nested JSON', Buffer.from(`{"ociVersion":"1.0.0","annotations":${'['.repeat(100000)}${']'.repeat(100000)}}`), /config\.json (is not valid JSON: nested too deeply|\/annotations: must be an object)/],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]), /config\.json is not valid UTF-8/],
  ];
  for (const [name, bytes, re] of docs) {
    const dir = join(work, `doc${n++}`);
    mkdirSync(join(dir, 'rootfs'), { recursive: true });
    writeFileSync(join(dir, 'config.json'), bytes);
    fails(t, ['create', '--bundle', dir, `doc${n}`], re, name);
    rmSync(dir, { recursive: true });
  }
});

t.test('missing bundle, bad ids, unknown command and flag', async (t) => {
  fails(t, ['create', '--bundle', join(work, 'nope'), 'nb'], /bundle .*nope is not a directory/, 'missing bundle');
  const b = makeBundle(work);
  const ids: [string, RegExp][] = [
    ['', /container id cannot be empty/], ['..', /invalid container id/], ['a/b', /invalid container id/],
    ['../../etc', /invalid container id/], ['x'.repeat(2000), /container id is too long/],
  ];
  for (const [id, re] of ids) fails(t, ['create', '--bundle', b.dir, id], re, `id ${JSON.stringify(id.slice(0, 20))}`);
  fails(t, ['frobnicate'], /unknown command "frobnicate"/, 'unknown command');
  fails(t, ['create', '--frob', 'x'], /create: unknown flag --frob/, 'unknown flag');
  fails(t, ['--frob', 'list'], /unknown flag --frob/, 'unknown global flag');
  fails(t, ['state'], /state: missing argument/, 'missing id');
  fails(t, ['kill', 'x', 'SIGNOPE'], /unknown signal "SIGNOPE"/, 'bad signal');
  fails(t, ['create', '--bundle', b.dir, '--preserve-fds', 'two', 'pf'], /--preserve-fds: "two" is not a non-negative integer/, 'bad preserve-fds');
});

t.test('a create that fails inside the helper leaves no process, cgroup, mount or state behind', async (t) => {
  const cases: [string, (s: Spec) => void, RegExp][] = [
    ['nonexistent executable', (s) => { s.process!.args = ['/no/such/binary']; }, /exec: "\/no\/such\/binary": No such file or directory/],
    ['executable not in PATH', (s) => { s.process!.args = ['nosuchcommand']; }, /exec: "nosuchcommand": executable file not found in \$PATH/],
    ['a cwd that is a file', (s) => { s.process!.cwd = '/bin/busybox'; }, /change to cwd \(config\.json \/process\/cwd\): .*Not a directory/],
    ['a mount that fails', (s) => { s.mounts!.push({ destination: '/x', type: 'proc', source: 'proc', options: ['nosuchoption=1'] }); }, /mount \(config\.json \/mounts\/7\): .*Invalid argument/],
    ['a missing bind source', (s) => { s.mounts!.push({ destination: '/x', type: 'bind', source: '/no/such/dir', options: ['bind'] }); }, /mount \(config\.json \/mounts\/7\): .*No such file or directory/],
    ['a sysctl that does not exist', (s) => { s.linux!.sysctl = { 'kernel.nosuchkey': '1' }; }, /sysctl/],
  ];
  for (const [name, change, re] of cases) {
    const b = makeBundle(work, change);
    fails(t, ['create', '--bundle', b.dir, `hf${n++}`], re, name);
  }
});

t.test('a bundle path with spaces and unicode works', async (t) => {
  const b = makeBundle(work, (s) => { s.process!.args = ['echo', 'ok']; }, 'bündel mit leerzeichen');
  const r = rt.run(['run', '--bundle', b.dir, 'uni']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'ok\n');
});

t.test('--log-format json writes runc-shaped error lines to --log', async (t) => {
  const log = join(work, 'log.json');
  const r = rt.run(['--log', log, '--log-format', 'json', 'state', 'nosuch']);
  t.not(r.status, 0);
  const line = JSON.parse(readFileSync(log, 'utf8').trim().split('\n').at(-1)!);
  t.equal(line.level, 'error');
  t.equal(line.msg, 'container "nosuch" does not exist');
  t.ok(!Number.isNaN(Date.parse(line.time)));
});

t.test('nothing left behind', async (t) => residue(t));
