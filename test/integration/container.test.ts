import t from 'tap';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { isDead, makeBundle, setup } from '../helpers/runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';

const { work, rt, residue } = setup();
let n = 0;

/** Runs a shell script in a fresh container and returns what it printed (and its exit status). */
function inContainer(script: string, change: (s: Spec) => void = () => {}, extra: string[] = []) {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sh', '-c', script];
    change(s);
  });
  const r = rt.run(['run', ...extra, '--bundle', b.dir, `v${n++}`]);
  return { ...r, bundle: b };
}

t.test('namespaces: pid 1, own hostname and domainname, only lo in a new network namespace', async (t) => {
  const r = inContainer('echo pid=$$; hostname; cat /proc/sys/kernel/domainname; ls /sys/class/net', (s) => {
    s.hostname = 'box1';
    s.domainname = 'example.test';
  });
  t.equal(r.stdout, 'pid=1\nbox1\nexample.test\nlo\n', r.stderr);
});

t.test('namespaces: an existing network namespace is joined by path', async (t) => {
  const ns = `pocrun-test-${process.pid}`;
  spawnSync('ip', ['netns', 'add', ns]);
  t.teardown(() => void spawnSync('ip', ['netns', 'delete', ns]));
  spawnSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'vtest0', 'type', 'veth', 'peer', 'name', 'vtest1']);
  const r = inContainer('ls /sys/class/net | sort | tr "\\n" " "', (s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((x) => (x.type === 'network' ? { type: 'network', path: `/var/run/netns/${ns}` } : x));
  });
  t.equal(r.stdout, 'lo vtest0 vtest1 ', r.stderr);
});

t.test('process: user, groups, umask, cwd, env and oom_score_adj', async (t) => {
  const r = inContainer('id; umask; pwd; echo $FOO; cat /proc/self/oom_score_adj', (s) => {
    s.process!.user = { uid: 1000, gid: 1000, additionalGids: [5, 65534], umask: 0o027 };
    s.process!.cwd = '/home/user';
    s.process!.env!.push('FOO=bar baz');
    s.process!.oomScoreAdj = 500;
  });
  t.equal(r.stdout, 'uid=1000(user) gid=1000(user) groups=5(tty),65534(nogroup)\n0027\n/home/user\nbar baz\n500\n', r.stderr);
});

t.test('process: args are found through PATH inside the container', async (t) => {
  const r = inContainer('exit 0', (s) => { s.process!.args = ['busybox', 'echo', 'found']; });
  t.equal(r.stdout, 'found\n');
  const missing = inContainer('', (s) => { s.process!.args = ['no-such-program']; });
  t.not(missing.status, 0);
  t.match(missing.stderr, /exec: "no-such-program": executable file not found in \$PATH/);
});

t.test('mounts: proc, sysfs read-only, tmpfs options, devpts, mqueue, shm, cgroup', async (t) => {
  const r = inContainer('cat /proc/mounts', (s) => {
    s.mounts!.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'size=1m', 'mode=700'] });
  });
  const lines = r.stdout.split('\n');
  const line = (dest: string) => lines.find((l) => l.split(' ')[1] === dest) ?? '';
  t.match(line('/proc'), /^proc \/proc proc rw/);
  t.match(line('/sys'), /^sysfs \/sys sysfs ro,nosuid,nodev,noexec/);
  t.match(line('/dev'), /^tmpfs \/dev tmpfs rw,nosuid/);
  t.match(line('/dev/pts'), /^devpts \/dev\/pts devpts rw,nosuid,noexec/);
  t.match(line('/dev/shm'), /^shm \/dev\/shm tmpfs rw,nosuid,nodev,noexec/);
  t.match(line('/dev/mqueue'), /^mqueue \/dev\/mqueue mqueue rw,nosuid,nodev,noexec/);
  t.match(line('/scratch'), /^tmpfs \/scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=700/);
  t.match(line('/sys/fs/cgroup'), /^tmpfs \/sys\/fs\/cgroup tmpfs ro,nosuid,nodev,noexec/);
  t.match(line('/sys/fs/cgroup/memory'), /^cgroup \/sys\/fs\/cgroup\/memory cgroup ro,nosuid,nodev,noexec/);
});

t.test('mounts: a bind mount keeps every per-mount flag, nosymfollow included (re-applied on its remount, as runc)', async (t) => {
  const data = join(work, 'symlinks');
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'target'), 'followed\n');
  symlinkSync('target', join(data, 'link'));
  const r = inContainer('grep " /nosym " /proc/self/mountinfo; cat /nosym/link 2>&1; cat /plain/link', (s) => {
    s.mounts!.push(
      { destination: '/nosym', type: 'bind', source: data, options: ['bind', 'nosymfollow', 'nodev'] },
      { destination: '/plain', type: 'bind', source: data, options: ['bind'] },
    );
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^\S+ \S+ \S+ \S+ \/nosym \S*\bnosymfollow\b/m, 'mountinfo shows nosymfollow on the bind mount');
  t.match(r.stdout, /nosym\/link'?: Too many levels of symbolic links/, 'a symlink on it is not followed');
  t.match(r.stdout, /followed\n$/, 'the same symlink is followed on a plain bind');
});

t.test('mounts: bind and rbind with ro; writes through a read-only bind fail', async (t) => {
  const data = join(work, 'data');
  mkdirSync(data, { recursive: true });
  writeFileSync(join(data, 'f'), 'host file\n');
  const r = inContainer('cat /ro/f; echo x > /ro/g 2>/dev/null || echo ro-refused; echo written > /rw/h', (s) => {
    s.mounts!.push({ destination: '/ro', type: 'bind', source: data, options: ['bind', 'ro'] });
    s.mounts!.push({ destination: '/rw', type: 'bind', source: data, options: ['rbind', 'rw'] });
  });
  t.equal(r.stdout, 'host file\nro-refused\n', r.stderr);
  t.equal(readFileSync(join(data, 'h'), 'utf8'), 'written\n');
  t.notOk(existsSync(join(data, 'g')));
});

t.test('mounts: a symlink in the rootfs cannot make a mount land outside it', async (t) => {
  const outside = join(work, 'outside');
  mkdirSync(outside, { recursive: true });
  const b = makeBundle(work, (s) => {
    s.process!.args = ['true'];
    s.mounts!.push({ destination: '/evil/sub', type: 'tmpfs', source: 'tmpfs' });
  });
  symlinkSync(outside, join(b.rootfs, 'evil'));
  const r2 = rt.run(['run', '--bundle', b.dir, 'evil']);
  t.equal(r2.status, 0, r2.stderr);
  t.notOk(existsSync(join(outside, 'sub')), 'nothing was created on the host through the link');
  t.ok(existsSync(join(b.rootfs, outside, 'sub')), 'the link was resolved inside the rootfs');
});

t.test('/dev: default devices, links, pts and ptmx; linux.devices', async (t) => {
  const r = inContainer(
    'for d in null zero full random urandom tty; do stat -c "%n %t:%T %a" /dev/$d; done; for l in fd stdin ptmx; do readlink /dev/$l; done; ' +
      'stat -c "%n %t:%T %a" /dev/fuse; head -c 4 /dev/zero | wc -c; test -c /dev/pts/ptmx && echo pts',
    (s) => { s.linux!.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o640 }]; },
  );
  t.equal(
    r.stdout,
    ['/dev/null 1:3 666', '/dev/zero 1:5 666', '/dev/full 1:7 666', '/dev/random 1:8 666', '/dev/urandom 1:9 666', '/dev/tty 5:0 666',
      '/proc/self/fd', '/proc/self/fd/0', 'pts/ptmx', '/dev/fuse a:e5 640', '4', 'pts', ''].join('\n'),
    r.stderr,
  );
});

t.test('root: readonly root and --no-pivot', async (t) => {
  const ro = inContainer('touch /x 2>/dev/null || echo refused', (s) => { s.root!.readonly = true; });
  t.equal(ro.stdout, 'refused\n', ro.stderr);
  const np = inContainer('ls /bin/busybox && echo ok', () => {}, ['--no-pivot']);
  t.equal(np.stdout, '/bin/busybox\nok\n', np.stderr);
});

t.test('masked and read-only paths', async (t) => {
  const r = inContainer('cat /proc/keys | wc -c; ls /sys/firmware | wc -l; (echo 1 > /proc/sys/kernel/shmmax) 2>/dev/null || echo ro');
  t.equal(r.stdout, '0\n0\nro\n', r.stderr);
});

t.test('preserve-fds passes extra descriptors, and no other runtime fd reaches the container', async (t) => {
  const file = join(work, 'preserved');
  writeFileSync(file, 'via fd 3\n');
  const b = makeBundle(work, (s) => { s.process!.args = ['sh', '-c', 'cat <&3; ls /proc/self/fd | sort -n | tr "\\n" " "']; });
  const fs = await import('node:fs');
  const fd = fs.openSync(file, 'r');
  const r = rt.run(['run', '--preserve-fds', '1', '--bundle', b.dir, 'pfd'], { stdio: ['ignore', 'pipe', 'pipe', fd] });
  fs.closeSync(fd);
  // fds 0-2, the preserved 3, and 4 for ls's own directory listing.
  t.equal(r.stdout, 'via fd 3\n0 1 2 3 4 ', r.stderr);
});

t.test('hooks run at their points with the state on stdin', async (t) => {
  const log = join(work, 'hooks.log');
  const hook = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `read s; echo "${name} $s" >> ${log}`] });
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sh', '-c', `echo process >> /shared/hooks.log`];
    s.mounts!.push({ destination: '/shared', type: 'bind', source: work, options: ['rbind'] });
    s.hooks = {
      prestart: [hook('prestart')],
      createRuntime: [hook('createRuntime')],
      createContainer: [hook('createContainer')],
      startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'read s; echo "startContainer $s" >> /shared/hooks.log'] }],
      poststart: [hook('poststart')],
      poststop: [hook('poststop')],
    };
  });
  rt.ok(['create', '--bundle', b.dir, 'hk']);
  rt.ok(['start', 'hk']);
  rt.waitStatus('hk', 'stopped');
  rt.ok(['delete', 'hk']);
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  t.same(lines.map((l) => l.split(' ')[0]).filter((x) => x !== 'process'),
    ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
  t.ok(lines.includes('process'), 'the process ran');
  for (const l of lines.filter((l) => l.includes('{'))) {
    const state = JSON.parse(l.slice(l.indexOf('{')));
    t.equal(state.id, 'hk');
    t.equal(state.bundle, b.dir);
  }
});

t.test('a failing poststop hook is a warning: the other hooks run and delete succeeds (runtime.md step 13)', async (t) => {
  const log = join(work, 'poststop.log');
  const b = makeBundle(work, (s) => {
    s.process!.args = ['true'];
    s.hooks = {
      poststop: [
        { path: '/bin/sh', args: ['sh', '-c', `echo first >> ${log}; echo cannot clean up >&2; exit 3`] },
        { path: '/bin/sh', args: ['sh', '-c', `echo second >> ${log}`] },
      ],
    };
  });
  rt.ok(['run', '--detach', '--bundle', b.dir, 'psfail']);
  rt.waitStatus('psfail', 'stopped');
  const r = rt.run(['delete', 'psfail']);
  t.equal(r.status, 0, 'delete succeeds');
  t.match(r.stderr, /warning: poststop hook 0 \(\/bin\/sh\): exit status 3: cannot clean up/);
  t.equal(readFileSync(log, 'utf8'), 'first\nsecond\n', 'the hook after the failing one ran');
  t.notOk(existsSync(join(rt.root, 'psfail')), 'the container is gone');
});

t.test('a failing poststart hook fails start and stops the container (runtime.md step 9)', async (t) => {
  const log = join(work, 'poststart.log');
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sleep', '1000'];
    s.hooks = {
      poststart: [
        { path: '/bin/sh', args: ['sh', '-c', `echo first >> ${log}; exit 4`] },
        { path: '/bin/sh', args: ['sh', '-c', `echo second >> ${log}`] },
      ],
      poststop: [{ path: '/bin/sh', args: ['sh', '-c', `echo poststop >> ${log}`] }],
    };
  });
  rt.ok(['create', '--bundle', b.dir, 'pstart']);
  const pid = rt.state('pstart').pid;
  const r = rt.run(['start', 'pstart']);
  t.equal(r.status, 1, 'start fails');
  t.match(r.stderr, /start container "pstart": poststart hook 0 \(\/bin\/sh\): exit status 4/);
  t.equal(rt.state('pstart').status, 'stopped', 'the container was stopped');
  t.ok(isDead(pid), 'its init is gone');
  rt.ok(['delete', 'pstart']);
  t.equal(readFileSync(log, 'utf8'), 'first\npoststop\n', 'no poststart hook after the failing one; poststop at delete');
});

t.test('a failing hook fails create and leaves nothing behind', async (t) => {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['true'];
    s.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'echo broken >&2; exit 7'] }] };
  });
  const r = rt.run(['create', '--bundle', b.dir, 'badhook']);
  t.not(r.status, 0);
  t.match(r.stderr, /createRuntime hook 0 \(\/bin\/sh\): exit status 7: broken/);
  t.notOk(existsSync(join(rt.root, 'badhook')));
});

t.test('a hook past its timeout is killed and fails the operation', async (t) => {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['true'];
    s.hooks = { createContainer: [{ path: '/bin/sleep', args: ['sleep', '100'], timeout: 1 }] };
  });
  const r = rt.run(['create', '--bundle', b.dir, 'slowhook']);
  t.not(r.status, 0);
  t.match(r.stderr, /sleep.*tim/i);
  t.notOk(existsSync(join(rt.root, 'slowhook')));
});

t.test('a terminal through --console-socket: the pty master reaches the engine, which drives a shell', async (t) => {
  const { spawn } = await import('node:child_process');
  const sock = join(work, 'console.sock');
  const input = join(work, 'console.in');
  const output = join(work, 'console.out');
  writeFileSync(input, 'tty; echo "answer $((6 * 7))"; stty size; exit 5\n');
  const listener = spawn('python3', [join(import.meta.dirname, '../helpers/console-socket.py'), sock, input, output], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => listener.stdout!.once('data', resolve));
  const b = makeBundle(work, (s) => {
    s.process!.terminal = true;
    s.process!.consoleSize = { height: 33, width: 111 };
    s.process!.args = ['sh'];
  });
  rt.ok(['create', '--console-socket', sock, '--bundle', b.dir, 'tty1']);
  rt.ok(['start', 'tty1']);
  await new Promise((resolve) => listener.once('exit', resolve));
  rt.waitStatus('tty1', 'stopped');
  rt.ok(['delete', 'tty1']);
  const text = readFileSync(output, 'utf8');
  t.match(text, /\/dev\/pts\/0/, 'the shell runs on the container\'s own pty');
  t.match(text, /answer 42/, 'the shell answered through the pty');
  t.match(text, /\b33 111\b/, 'at process.consoleSize');
});

t.test('a session keyring of its own, unless --no-new-keyring', async (t) => {
  // /proc/keys lists every keyring root may view; the container's own is named after its id.
  const count = (id: string, extra: string[]) => {
    const b = makeBundle(work, (s) => {
      s.linux!.maskedPaths = [];
      s.process!.args = ['sh', '-c', `grep -c "_ses\\.${id}:" /proc/keys; true`];
    });
    const r = rt.run(['run', ...extra, '--bundle', b.dir, id]);
    t.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  t.equal(count('keyring-own', []), '1\n', 'its own session keyring');
  t.equal(count('keyring-shared', ['--no-new-keyring']), '0\n', "the caller's keyring with --no-new-keyring");
});

t.test('the device cgroup: a node outside the allowed list cannot be opened, an allowed one can', async (t) => {
  // /dev/fuse (c 10:229), made inside with mknod: the default rules deny every device but the defaults.
  const script = 'mknod /tmp/fuse c 10 229 && { (exec 3</tmp/fuse) && echo opened || echo denied; }';
  const withMknod = (s: Spec) => {
    for (const set of ['bounding', 'effective', 'permitted'] as const) s.process!.capabilities![set]!.push('CAP_MKNOD');
  };
  const denied = inContainer(script, withMknod);
  t.match(denied.stdout, /^denied\n$/, denied.stderr);
  t.match(denied.stderr, /Operation not permitted/);
  const allowed = inContainer(script, (s) => {
    withMknod(s);
    s.linux!.resources!.devices!.push({ allow: true, type: 'c', major: 10, minor: 229, access: 'r' });
  });
  t.equal(allowed.stdout, 'opened\n', allowed.stderr);
});

t.test('HOME: from the container\'s /etc/passwd for the user when the environment has none, as runc', async (t) => {
  const home = (change: (s: Spec) => void) => inContainer('echo "$HOME"', change).stdout;
  t.equal(home(() => {}), '/root\n', 'root');
  t.equal(home((s) => { s.process!.user = { uid: 1000, gid: 1000 }; }), '/home/user\n', 'uid 1000');
  t.equal(home((s) => { s.process!.user = { uid: 4242, gid: 4242 }; }), '/\n', 'a uid without an entry');
  t.equal(home((s) => { s.process!.env!.push('HOME=/custom'); }), '/custom\n', 'the environment wins');
});

t.test('nothing left behind', async (t) => residue(t));
