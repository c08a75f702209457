import t, { type Test } from 'tap';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ADMISSION_SLOTS, freeSlots, isDead, makeBundle, ONLINE_CPUS, setup, top, TEST_CGROUP_PARENT, type Result } from '../helpers/runtime.js';

const { work, rt, residue } = setup();
chmodSync(work, 0o755); // a user namespace's root (a host uid without rights) must reach the bundles
let n = 0;

/** A running busybox container (sleep as its init), deleted when the test ends. */
function running(t: Test, change: Parameters<typeof makeBundle>[1] = () => {}): { id: string; pid: number; cgroup: string } {
  const id = `ex${n++}`;
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sleep', '1000'];
    change?.(s);
  });
  rt.ok(['run', '-d', '--bundle', b.dir, id]);
  t.teardown(() => void rt.run(['delete', '-f', id]));
  return { id, pid: rt.state(id).pid, cgroup: b.spec.linux!.cgroupsPath! };
}

/** A command whose started processes outlive it: its output goes to a file, not to pipes that would stay open. */
function detached(args: string[]): Result {
  const file = join(work, `out-${n++}`);
  const fd = openSync(file, 'w+');
  try {
    const r = spawnSync(join(top, 'dist/pocrun'), ['--root', rt.root, ...args], { stdio: ['ignore', fd, fd], timeout: 60_000 });
    const out = readFileSync(file, 'utf8');
    return { status: r.status, signal: r.signal, stdout: out, stderr: out };
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

function waitFor(cond: () => boolean, what: string, ms = 5000): void {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    spawnSync('sleep', ['0.02']);
  }
}

t.test("exec runs a command in the container and exits with its status", async (t) => {
  const c = running(t);
  const r = rt.run(['exec', c.id, 'sh', '-c', 'echo out; echo err >&2; echo pid=$$; hostname; exit 7']);
  t.equal(r.status, 7, r.stderr);
  t.equal(r.stdout, 'out\npid=2\npocrun\n', 'in the pid namespace (not pid 1) and the uts namespace');
  t.equal(r.stderr, 'err\n');
  t.equal(rt.run(['exec', c.id, 'true']).status, 0);
  const killed = rt.run(['exec', c.id, 'sh', '-c', 'kill -9 $$']);
  t.equal(killed.status, 137, 'killed by a signal: 128+n');
  const dashes = rt.run(['exec', c.id, 'echo', '--', '-n', 'x']);
  t.equal(dashes.stdout, '-- -n x\n', 'flags and -- after the id belong to the command');
  const missing = rt.run(['exec', c.id, 'no-such-program']);
  t.equal(missing.status, 255, 'an exec that fails before the program runs exits 255, as runc');
  t.match(missing.stderr, /exec: "no-such-program": executable file not found in \$PATH/);
  const none = rt.run(['exec', c.id]);
  t.not(none.status, 0);
  t.match(none.stderr, /no command given/);
});

t.test("the exec'd process is in the container's namespaces and cgroup, and sees only its own fds", async (t) => {
  const c = running(t);
  const inside = rt.ok(['exec', c.id, 'sh', '-c', 'cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup; echo ---; ls /proc/self/fd']);
  const [self, init, fds] = inside.split('---\n');
  t.equal(self, init, 'the same cgroups as the init (cgroup namespace root)');
  t.match(self!, /^\d+:memory:\/$/m);
  t.equal(fds, '0\n1\n2\n3\n', 'stdio and the fd ls reads /proc/self/fd with, nothing of the runtime');
  // Seen from the host: a detached exec'd process.
  const pidFile = join(work, 'ns.pid');
  const r = detached(['exec', '-d', '--pid-file', pidFile, c.id, 'sleep', '100']);
  t.equal(r.status, 0, r.stderr);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  for (const ns of ['pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup']) {
    t.equal(readlinkSync(`/proc/${pid}/ns/${ns}`), readlinkSync(`/proc/${c.pid}/ns/${ns}`), `${ns} namespace`);
  }
  t.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`pids:${c.cgroup}\\n`));
  t.match(readFileSync(`/sys/fs/cgroup/memory${c.cgroup}/cgroup.procs`, 'utf8'), new RegExp(`^${pid}$`, 'm'));
  const ps = JSON.parse(rt.ok(['ps', '--format', 'json', c.id]));
  t.same(ps, [c.pid, pid].sort((a, b) => a - b), 'ps lists the init and the exec, nothing else');
});

t.test("exec into a container with a user namespace: the process is root of that namespace, not of the host", async (t) => {
  const c = running(t, (s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
  });
  const r = rt.run(['exec', c.id, 'sh', '-c', 'id -u; cat /proc/self/uid_map']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^0\n\s+0\s+200000\s+65536\n$/);
  const pidFile = join(work, 'userns.pid');
  t.equal(detached(['exec', '-d', '--pid-file', pidFile, '-u', '1000', c.id, 'sleep', '100']).status, 0);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.equal(readlinkSync(`/proc/${pid}/ns/user`), readlinkSync(`/proc/${c.pid}/ns/user`));
  t.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^Uid:\t201000\t201000\t201000\t201000$/m, 'uid 1000 inside is 201000 on the host');
});

t.test('exec flags: --env, --cwd, --user, --additional-gids, --cap, --no-new-privs', async (t) => {
  const c = running(t, (s) => {
    s.process!.noNewPrivileges = false;
    s.process!.env = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'KEEP=1', 'FOO=old'];
  });
  const plain = rt.ok(['exec', c.id, 'sh', '-c', 'grep -E "^(CapInh|CapBnd|NoNewPrivs)" /proc/self/status; echo $KEEP $FOO; id -u']);
  t.match(plain, /CapInh:\t0000000000000000\n/, 'no inheritable capabilities (CVE-2022-29162)');
  t.match(plain, /CapBnd:\t0000000020000420\n/, "the container's bounding set (AUDIT_WRITE, KILL, NET_BIND_SERVICE)");
  t.match(plain, /NoNewPrivs:\t0\n/);
  t.match(plain, /1 old\n0\n$/);
  const r = rt.run([
    'exec', '--env', 'FOO=new', '-e', 'BAR=x y', '--cwd', '/tmp', '--user', '1000:1000', '--additional-gids', '5',
    '--cap', 'CAP_NET_RAW', '--no-new-privs', c.id,
    'sh', '-c', 'echo $KEEP $FOO $BAR; pwd; id; grep -E "^(CapInh|CapBnd|NoNewPrivs)" /proc/self/status',
  ]);
  t.equal(r.status, 0, r.stderr);
  t.equal(
    r.stdout,
    '1 new x y\n/tmp\nuid=1000(user) gid=1000(user) groups=5(tty)\nCapInh:\t0000000000000000\nCapBnd:\t0000000020002420\nNoNewPrivs:\t1\n',
  );
  const root = rt.ok(['exec', '--cap', 'NET_RAW', c.id, 'grep', 'CapEff', '/proc/self/status']);
  t.equal(root, 'CapEff:\t0000000020002420\n', 'an added capability is effective for root');
  const badCwd = rt.run(['exec', '--cwd', '/no/such/dir', c.id, 'true']);
  t.not(badCwd.status, 0);
  t.match(badCwd.stderr, /\/no\/such\/dir/);
  if (!existsSync('/sys/kernel/security/apparmor')) {
    const aa = rt.run(['exec', '--apparmor', 'some-profile', c.id, 'true']);
    t.not(aa.status, 0);
    t.match(aa.stderr, /process \/apparmorProfile: AppArmor is not enabled on this host/);
  }
  const badUser = rt.run(['exec', '--user', 'nobody', c.id, 'true']);
  t.not(badUser.status, 0);
  t.match(badUser.stderr, /--user: "nobody" is not UID or UID:GID/);
});

t.test("the container's seccomp profile applies to exec'd processes", async (t) => {
  const c = running(t, (s) => {
    s.linux!.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }],
    };
  });
  const r = rt.run(['exec', c.id, 'sh', '-c', 'grep ^Seccomp: /proc/self/status; mkdir /tmp/nope']);
  t.not(r.status, 0);
  t.match(r.stdout, /^Seccomp:\t2\n/, 'in filter mode');
  t.match(r.stderr, /Permission denied/, 'mkdir gets the errno the profile asks for (EACCES)');
  const p = join(work, 'seccomp-process.json');
  writeFileSync(p, JSON.stringify({ args: ['mkdir', '/tmp/nope'], cwd: '/', env: ['PATH=/bin'] }));
  t.match(rt.run(['exec', '--process', p, c.id]).stderr, /Permission denied/, 'also with --process');
});

t.test('exec with execCPUAffinity: the process runs on the final CPUs; a CPU the host lacks is a clear error', async (t) => {
  // The container's cpuset is the last CPU only, and the initial CPU is outside it: only a helper that is not
  // in the container's cgroup yet may run there, whether the exec is detached or not.
  const last = ONLINE_CPUS - 1;
  const c = running(t, (s) => { s.linux!.resources = { ...s.linux!.resources, cpu: { cpus: String(last) } }; });
  const p = join(work, 'affinity-process.json');
  const exec = (affinity: object) => {
    writeFileSync(p, JSON.stringify({ args: ['grep', 'Cpus_allowed_list', '/proc/self/status'], cwd: '/', env: ['PATH=/bin'], execCPUAffinity: affinity }));
    return rt.run(['exec', '--process', p, c.id]);
  };
  const final = exec({ initial: '0', final: String(last) });
  t.equal(final.stdout, `Cpus_allowed_list:\t${last}\n`, final.stderr);
  // Detached: the helper does not join the cgroup first (the initial CPUs are for before the move); the process
  // still ends in the container's cgroup, on the final CPUs.
  writeFileSync(p, JSON.stringify({ args: ['sleep', '100'], cwd: '/', env: ['PATH=/bin'], execCPUAffinity: { initial: '0', final: String(last) } }));
  const pidFile = join(work, 'affinity.pid');
  t.equal(detached(['exec', '--detach', '--pid-file', pidFile, '--process', p, c.id]).status, 0);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.match(readFileSync(`/proc/${pid}/status`, 'utf8'), new RegExp(`^Cpus_allowed_list:\\t${last}$`, 'm'), 'detached: the final CPUs');
  t.ok(readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').some((l) => l.endsWith(`:${c.cgroup}`)), "in the container's cgroup");
  process.kill(pid, 'SIGKILL');
  const absent = exec({ final: '1000' });
  t.not(absent.status, 0);
  t.match(absent.stderr, /^pocrun: exec failed: set CPU affinity \(\S+affinity-process.json \/execCPUAffinity\/final\): sched_setaffinity \(CPUs 1000\): Invalid argument \(none of them is online/);
});

t.test('exec --cgroup: into an existing sub-cgroup, of one controller or of all; a missing one is a clear error', async (t) => {
  const c = running(t);
  // The sub-cgroups are the test's own, made inside the container's cgroup; delete removes them with it.
  const memorySub = `/sys/fs/cgroup/memory${c.cgroup}/probe`;
  mkdirSync(memorySub);
  const cgroupOf = (args: string[]) => {
    const r = rt.run(['exec', ...args, c.id, 'cat', '/proc/self/cgroup']);
    return { ...r, memory: /^\d+:memory:(.*)$/m.exec(r.stdout)?.[1], pids: /^\d+:pids:(.*)$/m.exec(r.stdout)?.[1] };
  };
  const one = cgroupOf(['--cgroup', 'memory:probe']);
  t.equal(one.status, 0, one.stderr);
  t.same([one.memory, one.pids], ['/probe', '/'], 'memory:probe moves it in the memory hierarchy only (paths as its cgroup namespace shows them)');
  const all = cgroupOf(['--cgroup', 'probe']);
  t.not(all.status, 0);
  t.match(all.stderr, /exec --cgroup: the sub-cgroup \/sys\/fs\/cgroup\/\S+\/probe does not exist/, 'probe exists in memory only');
  for (const [arg, re] of [
    ['../escape', /exec --cgroup "\.\.\/escape": the sub-cgroup must be a path inside the container's cgroup/],
    ['/abs', /exec --cgroup "\/abs": the sub-cgroup must be a path inside/],
    ['nosuch:probe', /exec --cgroup nosuch:probe: this host has no nosuch controller mounted/],
  ] as const) {
    const r = rt.run(['exec', '--cgroup', arg, c.id, 'true']);
    t.not(r.status, 0, arg);
    t.match(r.stderr, re, arg);
  }
});

t.test('exec --process FILE runs a process.json (as conmon and containerd-shim call it)', async (t) => {
  const c = running(t);
  const file = join(work, 'process.json');
  writeFileSync(file, JSON.stringify({
    args: ['sh', '-c', 'echo $GREETING; pwd; id; grep CapEff /proc/self/status; cat /proc/self/oom_score_adj; exit 4'],
    oomScoreAdj: 321,
    env: ['PATH=/bin:/usr/bin', 'GREETING=hello'],
    cwd: '/etc',
    user: { uid: 65534, gid: 65534 },
    capabilities: { bounding: ['CAP_KILL'], effective: [], permitted: [] },
    noNewPrivileges: true,
  }));
  const r = rt.run(['exec', '--process', file, c.id]);
  t.equal(r.status, 4, r.stderr);
  t.equal(r.stdout, 'hello\n/etc\nuid=65534(nobody) gid=65534(nogroup)\nCapEff:\t0000000000000000\n321\n');
  // conmon's exact call: exec --pid-file P --process F --detach ID
  writeFileSync(file, JSON.stringify({ args: ['sleep', '100'], cwd: '/', env: ['PATH=/bin'] }));
  const pidFile = join(work, 'conmon.pid');
  const d = detached(['exec', '--pid-file', pidFile, '--process', file, '--detach', c.id]);
  t.equal(d.status, 0, d.stderr);
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.ok(pid > 0 && !isDead(pid), 'the pid file names the live process');
  t.equal(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), 'sleep\x00100\x00');
  const bad = join(work, 'bad.json');
  writeFileSync(bad, JSON.stringify({ args: ['sh'], cwd: '/', user: { uid: 'root' } }));
  const invalid = rt.run(['exec', '--process', bad, c.id]);
  t.not(invalid.status, 0);
  t.match(invalid.stderr, new RegExp(`process ${bad} /user/uid: must be an integer`));
  const missing = rt.run(['exec', '--process', join(work, 'none.json'), c.id]);
  t.match(missing.stderr, /none.json: No such file or directory/);
});

t.test('exec --detach returns at once; the process keeps running in the container', async (t) => {
  const c = running(t);
  const pidFile = join(work, 'd.pid');
  const started = Date.now();
  const r = detached(['exec', '-d', '--pid-file', pidFile, c.id, 'sh', '-c', 'sleep 2; echo done > /tmp/done']);
  t.equal(r.status, 0, r.stderr);
  t.ok(Date.now() - started < 1500, 'did not wait for the process');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.notOk(isDead(pid));
  waitFor(() => isDead(pid), 'the detached process to finish', 10_000);
  t.equal(rt.ok(['exec', c.id, 'cat', '/tmp/done']), 'done\n');
});

t.test('exec --preserve-fds passes fds 3.. to the process', async (t) => {
  const c = running(t);
  const file = join(work, 'preserved');
  const fd = openSync(file, 'w');
  try {
    const r = spawnSync(join(top, 'dist/pocrun'), ['--root', rt.root, 'exec', '--preserve-fds', '1', c.id, 'sh', '-c', 'echo via-fd3 >&3; ls /proc/self/fd'], {
      stdio: ['ignore', 'pipe', 'pipe', fd],
      encoding: 'utf8',
    });
    t.equal(r.status, 0, r.stderr);
    t.equal(r.stdout, '0\n1\n2\n3\n4\n', 'fd 3 and the one ls reads with');
  } finally {
    closeSync(fd);
  }
  t.equal(readFileSync(file, 'utf8'), 'via-fd3\n');
});

t.test('exec -t sends the pty master to --console-socket; the process gets a terminal', async (t) => {
  const c = running(t);
  for (const detach of [false, true]) {
    const sock = join(work, `console-${detach}.sock`);
    const input = join(work, `console-${detach}.in`);
    const output = join(work, `console-${detach}.out`);
    writeFileSync(input, 'tty; test -t 0 && echo stdin-is-a-tty; stty size; exit 5\n');
    const listener = spawn('python3', [join(top, 'test/helpers/console-socket.py'), sock, input, output, '15'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const closed = new Promise<number | null>((resolve) => listener.on('exit', (code) => resolve(code)));
    let sent = '';
    listener.stderr.on('data', (d) => (sent += d));
    await new Promise<void>((resolve) => listener.stdout.once('data', () => resolve()));
    const args = ['exec', '-t', '--console-socket', sock, ...(detach ? ['-d'] : []), c.id, 'sh'];
    const r = detach ? detached(args) : rt.run(args);
    t.equal(r.status, detach ? 0 : 5, `${detach ? 'detached' : 'foreground'}: ${r.stderr}`);
    t.equal(await closed, 0, 'the listener received the master and saw the pty close');
    t.match(sent, /^\/dev\/pts\/\d+\n$/, 'the slave name comes with the fd');
    const out = readFileSync(output, 'utf8');
    t.match(out, /\/dev\/pts\/\d+\r\nstdin-is-a-tty\r\n/, out);
  }
  // process.json's terminal (containerd: terminal only inside process.json) with its consoleSize.
  const file = join(work, 'tty-process.json');
  writeFileSync(file, JSON.stringify({ args: ['sh'], cwd: '/', terminal: true, consoleSize: { height: 33, width: 101 }, env: ['PATH=/bin'] }));
  const sock = join(work, 'console-p.sock');
  const input = join(work, 'console-p.in');
  const output = join(work, 'console-p.out');
  writeFileSync(input, 'stty size; exit\n');
  const listener = spawn('python3', [join(top, 'test/helpers/console-socket.py'), sock, input, output, '15'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const closed = new Promise((resolve) => listener.on('exit', resolve));
  await new Promise<void>((resolve) => listener.stdout.once('data', () => resolve()));
  const r = rt.run(['exec', '--process', file, '--console-socket', sock, c.id]);
  t.equal(r.status, 0, r.stderr);
  await closed;
  t.match(readFileSync(output, 'utf8'), /33 101\r\n/);
  const noSocket = rt.run(['exec', '-t', c.id, 'sh']);
  t.not(noSocket.status, 0);
  t.match(noSocket.stderr, /needs --console-socket/);
  t.equal(rt.ok(['exec', c.id, 'sh', '-c', 'test -t 0 || echo no-tty']), 'no-tty\n', 'no terminal without -t');
});

t.test('exec into a stopped, paused or unknown container fails', async (t) => {
  const c = running(t);
  rt.ok(['pause', c.id]);
  const paused = rt.run(['exec', c.id, 'true']);
  t.not(paused.status, 0);
  t.match(paused.stderr, /cannot exec in container "ex\d+": it is paused \(resume it first, or use --ignore-paused\)/);
  // --ignore-paused: the process starts once the container is resumed, and exec returns then.
  const child = spawn(join(top, 'dist/pocrun'), ['--root', rt.root, 'exec', '--ignore-paused', c.id, 'sh', '-c', 'echo ran'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let finished = false;
  void done.then(() => (finished = true));
  await new Promise((resolve) => setTimeout(resolve, 700));
  t.notOk(finished, 'still waiting while the container is frozen');
  t.equal(out, '');
  t.equal(freeSlots(rt.root), ADMISSION_SLOTS, 'and it holds no admission slot meanwhile');
  rt.ok(['resume', c.id]);
  t.equal(await done, 0, 'it ran once resumed');
  t.equal(out, 'ran\n');
  rt.ok(['pause', c.id]);
  rt.ok(['resume', c.id]);
  rt.ok(['kill', c.id, 'KILL']);
  rt.waitStatus(c.id, 'stopped');
  const stopped = rt.run(['exec', c.id, 'true']);
  t.equal(stopped.status, 255, "exec's own failures exit 255, as runc's");
  t.match(stopped.stderr, /cannot exec in container "ex\d+": it is stopped \(cannot exec in a stopped container\)/);
  const unknown = rt.run(['exec', 'nope', 'true']);
  t.equal(unknown.status, 255);
  t.match(unknown.stderr, /container "nope" does not exist/);
});

t.test('signals reach the exec\'d process; its exit status comes back', async (t) => {
  const c = running(t);
  const child = spawn(join(top, 'dist/pocrun'), ['--root', rt.root, 'exec', c.id, 'sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.05; done'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const code = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGTERM');
  t.equal(await code, 42);
});

t.test(`nothing left behind (${TEST_CGROUP_PARENT})`, async (t) => residue(t));
