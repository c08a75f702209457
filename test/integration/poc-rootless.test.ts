/**
 * poc run by an ordinary user (rootless, as rootless podman): a user the test makes (with subuid and subgid
 * ranges, and one without), its store in ~/.local/share/poc and its runtime directory in $XDG_RUNTIME_DIR/poc;
 * images unpacked in its user namespace, rootfs on overlayfs there (or fuse-overlayfs when asked) (root of the image is the user, uid 1000 the 1000th id of its range);
 * run, exec, logs, top, a published port on 127.0.0.1 and outbound traffic through slirp4netns (only to a server this
 * test runs on the host's loopback), stop and rm; volumes (named, anonymous, filled from the image with its owners); what needs root refused with a clear error; and nothing left of
 * the user's: containers, runtime state, sockets, processes (slirp4netns, monitors), the user itself.
 *
 * It runs on the host and in the cgroup v2 guest (scripts/test.sh runs it there too). Where the host delegates a
 * cgroup to users (USER_DELEGATION: systemd, cgroup v2; the guest) the user lingers, so its own systemd runs, and
 * as with rootless podman there every container gets a scope of it: stats reads it, and -m, --cpus and
 * --pids-limit hold; the user without subordinate ids does not linger and shows the refusals. On the host
 * (cgroup v1, no systemd) a container has a cgroup only below a --cgroup-parent root delegated.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makeTestUser, userResidue, type TestUser } from '../helpers/rootless.js';
import { detectCgroups } from '../../src/cgroups/index.js';
import { cgroupDirsOf } from '../../src/common/cgroup-mounts.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'making a test user needs root');
  process.exit(0);
}

const top = join(import.meta.dirname, '../..');
const POC = join(top, 'dist/poc');
// Short (unix socket paths hold 108 bytes) and traversable by the users, who keep their homes in it.
const work = mkdtempSync('/tmp/poc-rl-');
chmodSync(work, 0o755);
const user = makeTestUser(work, { prefix: 'pocrlp', linger: true });
const plain = makeTestUser(work, { prefix: 'pocrlq', subids: false });
const PORT = 20002 + (process.pid % 10000) * 4;
/** Whether the host has an IPv6 default route: then pasta gives the container an IPv6 address too. */
const HOST_HAS_IPV6 = spawnSync('ip', ['-6', 'route', 'show', 'default'], { encoding: 'utf8' }).stdout.trim() !== '';
/** The kernel's ephemeral port range, which poc picks a port of for `-p 80`. */
const localRange = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number, number];

t.teardown(() => {
  // Whatever a failed test left running: the user's containers are ended with the user's processes.
  user.remove();
  plain.remove();
  rmSync(work, { recursive: true, force: true });
});

function poc(who: TestUser, args: string[], input?: string) {
  const r = who.run(POC, args, { timeout: 90_000, ...(input !== undefined ? { input } : {}) });
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

const store = (who: TestUser) => join(who.home, '.local/share/poc');
const runDir = (who: TestUser) => join(who.runtimeDir, 'poc');
/** A directory's entries but pocrun's admission file (.create-slots), which stays in its --root. */
const entries = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.')) : []);

/** The user's live processes but its own systemd's (a zombie is not one: this host's pid 1 does not reap). */
function liveProcesses(who: TestUser): string[] {
  return who.processes().filter((p) => !p.endsWith('<defunct>'));
}

/**
 * Kills the network helper of a running container, found by the pid its monitor recorded (state.json's
 * networkHelper), and returns the one line the monitor then writes: from `poc logs`, checked to be said once, and
 * the same as `poc inspect`'s State.Error, with the container still running.
 */
async function killNetworkHelper(t: Test, name: string, id: string, helper: string, signal: NodeJS.Signals): Promise<string> {
  const stateFile = join(store(user), 'containers', id, 'state.json');
  const recorded = JSON.parse(readFileSync(stateFile, 'utf8')).networkHelper as { name: string; pid: number } | undefined;
  t.equal(recorded?.name, helper, `${name}: the monitor records its ${helper}: ${JSON.stringify(recorded)}`);
  const pid = recorded?.pid ?? 0;
  t.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), new RegExp(`\\b${helper}\\b`), `${name}: that pid is its ${helper}`);
  process.kill(pid, signal);
  // The monitor writes it as soon as it reaps the helper; 30 s covers a loaded machine and the emulated guest.
  let error = '';
  for (const deadline = Date.now() + 30_000; !error && Date.now() < deadline;) {
    await new Promise((r) => setTimeout(r, 20));
    error = JSON.parse(readFileSync(stateFile, 'utf8')).networkError ?? '';
  }
  t.notOk(JSON.parse(readFileSync(stateFile, 'utf8')).networkHelper, `${name}: no helper recorded once it died`);
  await new Promise((r) => setTimeout(r, 300)); // a second report would come meanwhile
  const said = poc(user, ['logs', name]).stderr.split('\n').filter((l) => l.startsWith('poc-monitor: '));
  t.same(said, [`poc-monitor: ${error}`], `${name}: said once in its log: ${said.join(' | ')}`);
  const state = JSON.parse(poc(user, ['inspect', name]).stdout)[0].State;
  t.same([state.Error, state.Running], [error, true], `${name}: inspect's State.Error says it, and the container still runs`);
  return error;
}

/** `systemctl --user show` of a unit of the user's systemd, as an object. */
function showUnit(unit: string, ...props: string[]): Record<string, string> {
  const r = user.run('systemctl', ['--user', '--no-pager', 'show', unit, ...props.flatMap((p) => ['-p', p])]);
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/**
 * A server's answer, asked until it comes (5 s at most): a published port listens before the program in the
 * container does, and a connection made before that is closed (the error, or '', is the answer then).
 */
async function answer(url: string): Promise<string> {
  let last = '';
  for (let i = 0; i < 100; i++) {
    try {
      const body = await httpGet(url);
      if (body) return body;
    } catch (err) {
      last = `(${(err as Error).message})`;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return last;
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** A rootfs tarball made as root: a root-owned file, and a directory and file of uid and gid 1000. */
function imageTarball(): string {
  const rootfs = join(work, 'img-rootfs');
  mkdirSync(join(rootfs, 'home/u'), { recursive: true });
  writeFileSync(join(rootfs, 'root-file'), 'root\n');
  writeFileSync(join(rootfs, 'home/u/file'), 'user\n');
  spawnSync('chown', ['-R', '1000:1000', join(rootfs, 'home/u')]);
  const tar = join(work, 'img.tar');
  const r = spawnSync('tar', ['-C', rootfs, '--numeric-owner', '-cf', tar, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  chmodSync(tar, 0o644);
  return tar;
}

t.test('init and import as the user: its store, files owned as its user namespace maps them', async (t) => {
  t.ok(user.subuid && user.subgid, `${user.name} has subordinate ranges ${JSON.stringify(user.subuid)}`);
  const init = poc(user, ['init', '--busybox']);
  t.equal(init.status, 0, `init --busybox: ${init.stderr}`);
  const tar = imageTarball();
  const imp = poc(user, ['import', tar, 'owned']);
  t.equal(imp.status, 0, `import: ${imp.stderr}`);
  const images = poc(user, ['images', '--format', 'json']);
  const list = JSON.parse(images.stdout) as Array<{ id: string; name: string | null }>;
  const owned = list.find((i) => i.name?.startsWith('owned'));
  t.ok(owned, 'the imported image is listed');
  const rootfs = join(store(user), 'images', owned!.id, 'rootfs');
  t.equal(statSync(join(rootfs, 'root-file')).uid, user.uid, "root's file is the user's own on the host");
  const st = statSync(join(rootfs, 'home/u/file'));
  t.equal(st.uid, user.subuid!.start + 999, 'uid 1000 is the 1000th id of the subuid range');
  t.equal(st.gid, user.subgid!.start + 999, 'gid 1000 is the 1000th id of the subgid range');
  t.same(entries(join('/var/lib/poc', 'images')).filter((n) => n.includes(owned!.id)), [], 'nothing in the root store');

  // Without ranges only root exists in the namespace: an image with other owners cannot be unpacked.
  const bad = poc(plain, ['import', tar, 'owned']);
  t.not(bad.status, 0, 'import with uid 1000 fails for a user without ranges');
  t.match(bad.stderr, /owner 1000:1000 cannot be given in this user's namespace: only root is mapped/);
  t.equal(bad.stderr.trim().split('\n').length, 1, 'one line');
  t.same(entries(join(store(plain), 'images')).filter((n) => !n.startsWith('images') && n !== '.lock'), [], 'nothing left in its store');
  const bb = poc(plain, ['run', '--rm', '--network', 'none', 'busybox', 'id', '-u']);
  t.equal(bb.status, 0, `a user without ranges still runs busybox (single-id mapping): ${bb.stderr}`);
  t.equal(bb.stdout.trim(), '0');
});

t.test('run --rm: root inside is the user outside, the exit status, nothing left', async (t) => {
  const r = poc(user, ['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'id -u; cat /proc/self/uid_map; ip -o link | wc -l; exit 3']);
  t.equal(r.status, 3, `exit status: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
  t.equal(lines[0], '0', 'root in the container');
  t.equal(lines[1], `0 ${user.uid} 1`, 'root is the user');
  t.equal(lines[2], `1 ${user.subuid!.start} ${user.subuid!.count}`, 'then the subuid range');
  t.equal(lines[3], '1', '--network none: only lo');
  t.same(entries(join(store(user), 'containers')), [], 'no container left');
  t.same(entries(join(runDir(user), 'runtime')), [], 'no runtime state left');

  // fuse-overlayfs in the kernel's place (POC_OVERLAY_MOUNT_PROGRAM, as storage.conf's mount_program), writable.
  const fuse = user.run(POC, ['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'grep " / " /proc/mounts | cut -d" " -f3; echo w > /w; cat /w'], {
    extraEnv: { POC_OVERLAY_MOUNT_PROGRAM: '/usr/bin/fuse-overlayfs' },
  });
  t.equal(fuse.status, 0, `run with fuse-overlayfs: ${fuse.stderr}`);
  t.equal(fuse.stdout, 'fuse.fuse-overlayfs\nw\n', 'the rootfs is fuse-overlayfs, and takes writes');
  // exec --user NAME there: the kernel refuses poc's look at a FUSE mount of another user namespace (allow_other
  // or not), so the image's /etc/passwd names the user (commands/exec.ts).
  const fuseEnv = { extraEnv: { POC_OVERLAY_MOUNT_PROGRAM: '/usr/bin/fuse-overlayfs' } };
  const fuseRun = user.run(POC, ['run', '-d', '--name', 'fusex', '--network', 'none', 'busybox', 'sleep', '600'], fuseEnv);
  t.equal(fuseRun.status, 0, `run -d with fuse-overlayfs: ${fuseRun.stderr}`);
  const fuseExec = poc(user, ['exec', '-u', 'user', 'fusex', 'id', '-u']);
  t.equal(fuseExec.stdout, '1000\n', `exec -u user with fuse-overlayfs: the image's user: ${fuseExec.stderr}`);
  t.equal(poc(user, ['rm', '-f', 'fusex']).status, 0);
  t.same(liveProcesses(user), [], 'no fuse-overlayfs daemon left');
});

t.test('-d with -p and slirp4netns: publish, outbound, exec, logs, ps, stop, rm', async (t) => {
  // The outbound check's server: on the host's loopback, which allow_host_loopback lets the container reach.
  // A process of its own: poc runs through spawnSync, which would hold this process's event loop.
  const www = join(work, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'index.html'), 'hello from a rootless container\n');
  writeFileSync(join(www, 'pong'), 'pong\n');
  chmodSync(www, 0o755);
  const serverPort = PORT + 1;
  const server = spawn('busybox', ['httpd', '-f', '-p', `127.0.0.1:${serverPort}`, '-h', www], { stdio: 'ignore' });
  t.teardown(() => server.kill('SIGKILL'));
  await answer(`http://127.0.0.1:${serverPort}/pong`);

  const run = poc(user, [
    'run', '-d', '--name', 'web', '--network', 'slirp4netns:allow_host_loopback=true', '-p', `127.0.0.1:${PORT}:80`, '-p', '127.0.0.1::80',
    '-v', `${www}:/www:ro`, 'busybox', 'sh', '-c', 'echo started; exec httpd -f -p 80 -h /www',
  ]);
  t.equal(run.status, 0, `run -d: ${run.stderr}`);
  t.teardown(() => void poc(user, ['rm', '-f', 'web'])); // a failed check must not leave it to the next test
  t.match(run.stdout, /^[0-9a-f]{64}\n$/);
  t.ok(liveProcesses(user).some((p) => p.includes('slirp4netns')), 'slirp4netns runs as the user');

  t.equal(await answer(`http://127.0.0.1:${PORT}/`), 'hello from a rootless container\n', 'the published port answers on 127.0.0.1');
  // -p 127.0.0.1::80: an ephemeral port, picked by poc from the kernel's ephemeral range, kept in the record.
  const ports = poc(user, ['port', 'web']);
  const eph = Number(new RegExp(`^80/tcp -> 127\\.0\\.0\\.1:${PORT}\n80/tcp -> 127\\.0\\.0\\.1:(\\d+)\n$`).exec(ports.stdout)?.[1]);
  t.ok(eph >= localRange[0] && eph <= localRange[1] && eph !== PORT, `poc port: the ephemeral port ${eph} is of ip_local_port_range ${localRange.join('-')}: ${ports.stdout}${ports.stderr}`);
  t.equal(await answer(`http://127.0.0.1:${eph}/`), 'hello from a rootless container\n', 'the ephemeral port answers (slirp4netns forwards it)');
  const out = poc(user, ['exec', 'web', 'wget', '-qO-', `http://10.0.2.2:${serverPort}/pong`]);
  t.equal(out.stdout, 'pong\n', `outbound through slirp4netns to the host's loopback: ${out.stderr}`);
  const ex = poc(user, ['exec', 'web', 'sh', '-c', 'id -u; cat /etc/resolv.conf | grep nameserver; mkdir -p /data/d && touch /data/d/f && chown -R 1000:1000 /data']);
  t.equal(ex.status, 0, `exec: ${ex.stderr}`);
  t.match(ex.stdout, /^0\nnameserver 10\.0\.2\.3\n$/, 'exec as root, with the slirp4netns resolver');
  // exec --user NAME reads the running container's /etc/passwd, mounted in the monitor's mount namespace alone.
  t.equal(poc(user, ['exec', 'web', 'sh', '-c', 'echo added:x:4100:4100::/:/bin/sh >> /etc/passwd']).status, 0);
  const added = poc(user, ['exec', '-u', 'added', 'web', 'id', '-u']);
  t.equal(added.stdout, '4100\n', `exec -u: a user added at run time: ${added.stderr}`);
  t.match(poc(user, ['logs', 'web']).stdout, /^started$/m, 'logs');
  t.match(poc(user, ['ps']).stdout, new RegExp(`127\\.0\\.0\\.1:${PORT}->80/tcp, 127\\.0\\.0\\.1:${eph}->80/tcp\\s+web`), 'ps shows the ports');

  t.match(poc(user, ['top', 'web']).stdout, /httpd -f -p 80 -h \/www/, `top: the processes of its ${user.manager ? 'scope' : 'pid namespace (no cgroup)'}`);
  if (user.manager) {
    const stats = poc(user, ['stats', '--no-stream', '--format', 'json', 'web']);
    t.equal(stats.status, 0, `stats reads its scope: ${stats.stderr}`);
    t.match(JSON.parse(stats.stdout || '[]'), [{ name: 'web', pids: 1 }], 'stats: its one process');
  } else {
    const stats = poc(user, ['stats', '--no-stream', 'web']);
    t.not(stats.status, 0, 'stats: refused');
    t.match(stats.stderr, /^poc: stats reads each container's cgroup, and the rootless container web has none of its own \(it gets one only from a cgroup delegated to the user/);
  }

  const stop = poc(user, ['stop', '-t', '2', 'web']);
  t.equal(stop.status, 0, `stop: ${stop.stderr}`);
  t.match(poc(user, ['ps', '-a']).stdout, /Exited/);
  t.same(liveProcesses(user).filter((p) => /slirp4netns|poc-monitor/.test(p)), [], 'slirp4netns and the monitor have ended');
  // Started again, it has the port it was given, as podman's containers keep theirs.
  const again = poc(user, ['start', 'web']);
  t.equal(again.status, 0, `start again: ${again.stderr}`);
  t.equal(poc(user, ['port', 'web', '80']).stdout, `127.0.0.1:${PORT}\n127.0.0.1:${eph}\n`, 'the same ephemeral port after a restart');
  t.equal(await answer(`http://127.0.0.1:${eph}/`), 'hello from a rootless container\n', 'and it answers');
  // slirp4netns dies while the container runs: the container has lost its network, and the monitor says so.
  const slirpGone = await killNetworkHelper(t, 'web', run.stdout.trim(), 'slirp4netns', 'SIGTERM');
  t.match(slirpGone, /^slirp4netns \(pid \d+\), the container's network, was killed by signal 15 \(SIGTERM\): the container has no network now$/, 'named, with how it ended');
  t.equal(poc(user, ['stop', '-t', '2', 'web']).status, 0);
  // Its diff holds a directory of uid 1000 (a subordinate id on the host), which rm removes in the user namespace.
  const rm = poc(user, ['rm', 'web']);
  t.equal(rm.status, 0, `rm: ${rm.stderr}`);
  t.same(entries(join(store(user), 'containers')), [], 'the container directory is gone');
});

t.test('--network pasta (podman 5\'s): the host\'s addresses, DNS through pasta, a published port on 127.0.0.1; gone with the container', async (t) => {
  const port = PORT + 2;
  const run = poc(user, [
    'run', '-d', '--name', 'pst', '--network', 'pasta', '-p', `127.0.0.1:${port}:8080`, '-p', '127.0.0.1::8080', 'busybox', 'sh', '-c',
    'mkdir /www && echo hello through pasta > /www/index.html && exec httpd -f -p 8080 -h /www',
  ]);
  t.equal(run.status, 0, `run -d --network pasta: ${run.stderr}`);
  t.teardown(() => void poc(user, ['rm', '-f', 'pst'])); // a failed check must not leave it to the next test
  t.ok(liveProcesses(user).some((p) => /\bpasta\b/.test(p)), 'pasta runs as the user');
  const body = await answer(`http://127.0.0.1:${port}/`);
  t.equal(body, 'hello through pasta\n', 'the published port answers on the host\'s 127.0.0.1');
  const eph = Number(/^127\.0\.0\.1:(\d+)$/m.exec(poc(user, ['port', 'pst', '8080/tcp']).stdout.split('\n')[1] ?? '')?.[1]);
  t.ok(eph >= localRange[0] && eph <= localRange[1] && eph !== port, `an ephemeral port of ip_local_port_range: ${eph}`);
  t.equal(await answer(`http://127.0.0.1:${eph}/`), 'hello through pasta\n', 'the ephemeral port answers (pasta forwards it)');
  const second = poc(user, ['create', '--name', 'pst2', '--network', 'pasta', '-p', '127.0.0.1::8080', 'busybox', 'true']);
  t.equal(second.status, 0, `create: ${second.stderr}`);
  const eph2 = Number(/:(\d+)\n$/.exec(poc(user, ['port', 'pst2']).stdout)?.[1]);
  t.ok(eph2 >= localRange[0] && eph2 !== eph, `a second container gets another port (${eph2}; ${eph} is bound)`);
  t.equal(poc(user, ['rm', 'pst2']).status, 0);
  const ex = poc(user, ['exec', 'pst', 'sh', '-c', 'grep nameserver /etc/resolv.conf; ip -o -4 addr show | grep -v " lo " | wc -l; ip route | grep -c ^default']);
  t.equal(ex.stdout, 'nameserver 169.254.1.1\n1\n1\n', `an interface with the host's address and a default route; DNS through pasta: ${ex.stderr}`);
  // IPv6 too where the host has it (the option test below turns it off with --ipv4-only).
  const v6 = Number(poc(user, ['exec', 'pst', 'sh', '-c', 'ip -o -6 addr show scope global | wc -l']).stdout.trim());
  t.equal(v6 > 0, HOST_HAS_IPV6, `global IPv6 addresses as the host has them: ${v6}`);
  // pasta dies while the container runs (as Debian 12's pasta does with --pcap where gettimeofday is a system call):
  // its tap device goes with it, and the monitor says so, naming pasta and the signal.
  const pastaGone = await killNetworkHelper(t, 'pst', run.stdout.trim(), 'pasta', 'SIGKILL');
  t.match(pastaGone, /^pasta \(pid \d+\), the container's network, was killed by signal 9 \(SIGKILL\): the container has no network now$/);
  t.equal(poc(user, ['exec', 'pst', 'ls', '/sys/class/net']).stdout, 'lo\n', 'the container has no interface but lo now');
  t.equal(poc(user, ['rm', '-f', 'pst']).status, 0);
  t.same(liveProcesses(user).filter((p) => /\bpasta\b|poc-monitor/.test(p)), [], 'pasta and the monitor have ended');
});

t.test("--network pasta:OPTIONS: pasta(1)'s options as podman passes them, each seen in the container", async (t) => {
  // A server on the host's loopback: reached from the container through the gateway (--map-gw) and through the
  // container's own 127.0.0.1 (-T, forwarded to the host's). The exec right after run -d sees the interface
  // configured: pasta writes its pid, which the monitor waits for, only after that (src/native/poc-monitor.c).
  const www = join(work, 'www-pasta');
  mkdirSync(www, { recursive: true });
  writeFileSync(join(www, 'pong'), 'pong from the host\n');
  chmodSync(www, 0o755);
  const [serverPort, inPort] = [PORT + 3, PORT + 2];
  const server = spawn('busybox', ['httpd', '-f', '-p', `127.0.0.1:${serverPort}`, '-h', www], { stdio: 'ignore' });
  t.teardown(() => server.kill('SIGKILL'));
  await answer(`http://127.0.0.1:${serverPort}/pong`);
  const [pcap, log] = [join(user.home, 'pasta.pcap'), join(user.home, 'pasta.log')];
  const opts = [
    '--ipv4-only', '-a', '10.0.2.100', '-n', '24', '-g', '10.0.2.2', '--dns-forward', '10.0.2.3', '-I', 'tap0', '--mtu', '1500',
    '--no-dhcp', '--no-ndp', '--no-dhcpv6', '--no-ra', '--map-gw', '-T', String(serverPort), `--tcp-ports=127.0.0.1/${inPort}:8081`, `--log-file=${log}`,
  ];
  const run = poc(user, [
    'run', '-d', '--name', 'popt', '--network', `pasta:${opts.join(',')}`, 'busybox', 'sh', '-c',
    'mkdir /www && echo hello through a pasta option > /www/index.html && exec httpd -f -p 8081 -h /www',
  ]);
  t.equal(run.status, 0, `run -d --network pasta:${opts.join(',')}: ${run.stderr}`);
  t.teardown(() => void poc(user, ['rm', '-f', 'popt'])); // a failed check must not leave it to the next test
  const ex = poc(user, ['exec', 'popt', 'sh', '-c', [
    'ip -o -4 addr show tap0 | awk \'{print $4}\'', 'ip route | grep ^default', 'grep nameserver /etc/resolv.conf',
    'ip -o -6 addr show scope global | wc -l', 'ls /sys/class/net | grep -v lo', 'cat /sys/class/net/tap0/mtu',
    `wget -qO- http://10.0.2.2:${serverPort}/pong`, `wget -qO- http://127.0.0.1:${serverPort}/pong`,
  ].join('; ')]);
  t.equal(ex.stdout, [
    '10.0.2.100/24', 'default via 10.0.2.2 dev tap0 ', 'nameserver 10.0.2.3', '0', 'tap0', '1500', 'pong from the host', 'pong from the host', '',
  ].join('\n'), `-a/-n, -g, --dns-forward in resolv.conf, --ipv4-only, -I, --mtu, --map-gw, -T: ${ex.stderr}`);
  const body = await answer(`http://127.0.0.1:${inPort}/`);
  t.equal(body, 'hello through a pasta option\n', "--tcp-ports: the host's 127.0.0.1 port reaches the container");
  t.ok(existsSync(log) && statSync(log).uid === user.uid, `--log-file: pasta logs to the user's file: ${existsSync(log) ? readFileSync(log, 'utf8').slice(0, 200) : 'none'}`);
  t.equal(poc(user, ['rm', '-f', 'popt']).status, 0);
  // --pcap in a container of its own, which needs no network: Debian 12's pasta (0.0~git20230309) calls
  // gettimeofday(2) for each captured frame, which its seccomp filter does not allow, and where that is a real
  // system call (no vDSO clock: the TCG guest's hpet) the kernel kills pasta at the first frame (SIGSYS).
  const cap = poc(user, ['run', '--rm', '--network', `pasta:-p,${pcap}`, 'busybox', 'true']);
  t.equal(cap.status, 0, `run --network pasta:-p,FILE: ${cap.stderr}`);
  t.ok(existsSync(pcap) && statSync(pcap).uid === user.uid && readFileSync(pcap).readUInt32LE(0) === 0xa1b2c3d4, '-p (--pcap): pasta writes the capture as the user');
  t.same(liveProcesses(user).filter((p) => /\bpasta\b|poc-monitor/.test(p)), [], 'pasta and the monitor have ended');
});

t.test('cgroupfs below a --cgroup-parent delegated to the user: limits, stats, top; the cgroup gone with rm', async (t) => {
  // Delegated as root delegates a cgroup to a user (cgroup v2's rules, which v1 allows too): a parent it owns, with
  // its cgroup.procs (and v2's cgroup.subtree_control), in every hierarchy pocrun makes cgroups in, and the user's
  // command running in a leaf of it, so that a process moves only within the user's subtree (v2 asks that of the
  // common ancestor). v1's cpuset: CPUs and memory nodes given, or nothing could join it.
  const parent = `/poc-rl-${process.pid}`;
  const dirs = cgroupDirsOf(parent);
  t.teardown(() => {
    poc(user, ['rm', '-f', 'lim']); // a failed check must not leave it, nor its cgroup
    for (const d of dirs) for (const sub of ['leaf', '']) spawnSync('rmdir', [join(d, sub)]);
  });
  for (const d of dirs) {
    mkdirSync(join(d, 'leaf'), { recursive: true });
    for (const dir of [d, join(d, 'leaf')]) {
      // v1 only: there an empty set is empty. On v2 an empty set takes the parent's, and the root has no such file.
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        const mine = join(dir, f);
        const parents = join(dir, '..', f);
        if (existsSync(mine) && !readFileSync(mine, 'utf8').trim() && existsSync(parents) && readFileSync(parents, 'utf8').trim()) writeFileSync(mine, readFileSync(parents, 'utf8'));
      }
      for (const f of ['', 'cgroup.procs', 'tasks', 'cgroup.subtree_control', 'cgroup.threads']) if (existsSync(join(dir, f))) chownSync(join(dir, f), user.uid, user.gid);
    }
    // v2: the limits' controllers enabled for the container's cgroup below the parent.
    if (existsSync(join(d, 'cgroup.subtree_control'))) writeFileSync(join(d, 'cgroup.subtree_control'), '+memory +pids');
  }
  // Moved by root (on v2 the user may not move a process out of a cgroup of root's), then run as the user.
  const inLeaf = dirs.map((d) => `echo $$ > ${join(d, 'leaf', 'cgroup.procs')}`).join(' && ');
  const r = spawnSync('sh', ['-c', `${inLeaf} && exec "$@"`, 'sh', ...user.prefix(), POC, 'run', '-d', '--name', 'lim', '--network', 'none', '--cgroup-manager', 'cgroupfs', '--cgroup-parent', parent, '-m', '64m', '--pids-limit', '20', 'busybox', 'sleep', '100'], { encoding: 'utf8', timeout: 90_000 });
  const run = { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
  t.equal(run.status, 0, `run -d --cgroup-parent ${parent} -m 64m --pids-limit 20: ${run.stderr}`);
  const id = run.stdout.trim();
  const pid = (JSON.parse(poc(user, ['inspect', 'lim']).stdout) as Array<{ State: { Pid: number } }>)[0]!.State.Pid;
  const memory = Object.entries(detectCgroups().dirs(`${parent}/${id}`)).find(([c]) => c === 'memory' || c === 'unified')![1];
  t.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`:memory:${parent}/${id}\n|^0::${parent}/${id}\n`, 'm'), "the init is in the container's cgroup below the parent");
  const memFile = existsSync(join(memory, 'memory.max')) ? 'memory.max' : 'memory.limit_in_bytes';
  t.equal(readFileSync(join(memory, memFile), 'utf8').trim(), String(64 << 20), '-m');
  const stats = poc(user, ['stats', '--no-stream', '--format', 'json', 'lim']);
  t.equal(stats.status, 0, `stats: ${stats.stderr}`);
  t.match(JSON.parse(stats.stdout), [{ name: 'lim', memoryLimit: 64 << 20, pids: 1 }], 'stats reads its cgroup');
  t.match(poc(user, ['top', 'lim']).stdout, /sleep 100/, 'top');
  t.equal(poc(user, ['rm', '-f', 'lim']).status, 0);
  t.notOk(existsSync(memory), 'the cgroup is gone with the container');
  // A parent that is not the user's: refused before anything is made, naming the flag.
  const theirs = poc(user, ['run', '--rm', '--network', 'none', '--cgroup-manager', 'cgroupfs', '--cgroup-parent', '/', 'busybox', 'true']);
  t.match(theirs.stderr, /^poc: (run: )?invalid --cgroup-parent "\/"|--cgroup-parent \/[^ ]*: this user cannot make cgroups there/);
  const none = poc(user, ['run', '--rm', '--network', 'none', '--cgroup-manager', 'cgroupfs', '--cgroup-parent', `/poc-rl-none-${process.pid}`, 'busybox', 'true']);
  t.not(none.status, 0);
  t.match(none.stderr, new RegExp(`--cgroup-parent /poc-rl-none-${process.pid}: this user cannot make cgroups there \\(/sys/fs/cgroup/[^:]+: no such cgroup\\): a rootless container's cgroup parent must be delegated to the user`));
  t.equal(none.stderr.trim().split('\n').length, 1, 'one line');
  t.same(entries(join(store(user), 'containers')), [], 'no container left');
});

t.test('volumes: a named one filled from the image with its owners, kept past rm; an anonymous one gone with rm -v', async (t) => {
  const vols = join(store(user), 'volumes');
  const cr = poc(user, ['volume', 'create', 'spare']);
  t.equal(cr.status, 0, `volume create: ${cr.stderr}`);
  const ins = JSON.parse(poc(user, ['volume', 'inspect', 'spare']).stdout) as Array<{ Mountpoint: string }>;
  t.equal(ins[0]!.Mountpoint, join(vols, 'spare/_data'), "in the user's store");
  // The image "owned" has /home/u of uid and gid 1000 and no shell: the host's static busybox is bound in.
  const run = poc(user, [
    'run', '--name', 'vol', '--network', 'none', '-v', 'data:/home/u', '-v', '/anon', '-v', '/usr/bin/busybox:/busybox:ro',
    'owned', '/busybox', 'sh', '-c', '/busybox stat -c %u:%g /home/u /home/u/file; /busybox cat /home/u/file; echo kept > /home/u/new; echo a > /anon/a',
  ]);
  t.equal(run.status, 0, `run with volumes: ${run.stderr}`);
  t.equal(run.stdout, '1000:1000\n1000:1000\nuser\n', "the volume holds the image's /home/u with its owners, as the container sees them");
  const host = statSync(join(vols, 'data/_data/file'));
  t.same([host.uid, host.gid], [user.subuid!.start + 999, user.subgid!.start + 999], 'on the host: range start + 999');
  const ls = poc(user, ['volume', 'ls', '-q']).stdout.trim().split('\n').sort();
  const anon = ls.filter((n) => /^[0-9a-f]{64}$/.test(n));
  t.equal(anon.length, 1, `one anonymous volume: ${ls.join(' ')}`);
  t.same(ls.filter((n) => !anon.includes(n)), ['data', 'spare'], 'and the named ones');

  const rm = poc(user, ['rm', '-v', 'vol']);
  t.equal(rm.status, 0, `rm -v: ${rm.stderr}`);
  t.same(entries(vols).sort(), ['data', 'spare'], 'rm -v removed the anonymous volume (files of uid 0 only) and kept the named one');
  const again = poc(user, ['run', '--rm', '--network', 'none', '-v', 'data:/d', 'busybox', 'sh', '-c', 'cat /d/new; stat -c %u /d/file']);
  t.equal(again.stdout, 'kept\n1000\n', `the data survived rm: ${again.stderr}`);
  const vrm = poc(user, ['volume', 'rm', 'data']);
  t.equal(vrm.status, 0, `volume rm of a volume holding files of uid 1000: ${vrm.stderr}`);
  const prune = poc(user, ['volume', 'prune', '-a']);
  t.equal(prune.status, 0, `volume prune -a: ${prune.stderr}`);
  t.same(entries(vols), [], 'no volume left');
  t.same(entries(join(store(user), 'containers')), [], 'no container left');
});

t.test(`limits: ${user.manager ? "-m, --cpus and --pids-limit in a scope of the user's systemd, stats; " : ''}refused by name without a cgroup delegated to the user`, async (t) => {
  // Where the host delegates, the user without subordinate ids (who does not linger) has none.
  const none = user.manager ? plain : user;
  for (const [args, want] of [
    [['run', '--rm', '--network', 'none', '-m', '64m', 'busybox', 'true'], /^poc: -m needs a cgroup of the container's own, which a rootless container gets only from a cgroup delegated to the user: on this host none is/],
    [['run', '--rm', '--network', 'none', '--cgroup-manager', 'systemd', 'busybox', 'true'], /^poc: --cgroup-manager systemd: a rootless container's scope is the user's own systemd's, and on this host there is none/],
  ] as const) {
    const r = poc(none, [...args]);
    t.not(r.status, 0, `${args.join(' ')}: non-zero`);
    t.match(r.stderr, want, `${args.join(' ')}: ${r.stderr.trim()}`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
  }
  t.same(entries(join(store(none), 'containers')), [], 'no container left');
  if (!user.manager) return;

  const run = poc(user, ['run', '-d', '--name', 'lim', '--network', 'none', '-m', '64m', '--cpus', '0.5', '--pids-limit', '20', 'busybox', 'sleep', '1000']);
  t.equal(run.status, 0, `run -d with limits: ${run.stderr}`);
  const unit = `poc-${run.stdout.trim()}.scope`;
  t.teardown(() => void poc(user, ['rm', '-f', 'lim']));
  t.same(
    showUnit(unit, 'ActiveState', 'Slice', 'MemoryMax', 'TasksMax', 'CPUQuotaPerSecUSec'),
    { ActiveState: 'active', Slice: 'user.slice', MemoryMax: String(64 << 20), TasksMax: '20', CPUQuotaPerSecUSec: '500ms' },
    "systemctl --user show: the container's scope, with its limits",
  );
  const dir = `/sys/fs/cgroup${user.manager.cgroup}/user.slice/${unit}`;
  const read = (f: string) => readFileSync(join(dir, f), 'utf8').trim();
  t.same([read('memory.max'), read('pids.max'), read('cpu.max')], [String(64 << 20), '20', '50000 100000'], 'in the files');
  const stats = poc(user, ['stats', '--no-stream', '--format', 'json', 'lim']);
  t.equal(stats.status, 0, `stats reads the scope: ${stats.stderr}`);
  t.match(JSON.parse(stats.stdout || '[]'), [{ name: 'lim', memoryLimit: 64 << 20, pids: 1 }], 'stats: the limit, and the one process');
  const rm = poc(user, ['rm', '-f', 'lim']);
  t.equal(rm.status, 0, `rm -f: ${rm.stderr}`);
  t.equal(showUnit(unit, 'LoadState').LoadState, 'not-found', 'the scope is gone');

  // --cgroup-parent with the systemd manager: a slice of the user's systemd, which makes it for the scope.
  const sliced = poc(user, ['run', '-d', '--name', 'sliced', '--network', 'none', '--cgroup-parent', 'mine.slice', '-m', '32m', 'busybox', 'sleep', '1000']);
  t.equal(sliced.status, 0, `run -d --cgroup-parent mine.slice: ${sliced.stderr}`);
  const slicedUnit = `poc-${sliced.stdout.trim()}.scope`;
  t.teardown(() => void poc(user, ['rm', '-f', 'sliced']));
  t.same(showUnit(slicedUnit, 'ActiveState', 'Slice', 'MemoryMax'), { ActiveState: 'active', Slice: 'mine.slice', MemoryMax: String(32 << 20) }, 'the scope is in mine.slice, with its limit');
  t.equal(readFileSync(`/sys/fs/cgroup${user.manager.cgroup}/mine.slice/${slicedUnit}/memory.max`, 'utf8').trim(), String(32 << 20), 'in the files');
  t.equal(poc(user, ['rm', '-f', 'sliced']).status, 0);
  t.equal(showUnit(slicedUnit, 'LoadState').LoadState, 'not-found', 'the scope is gone');

  // A bus address that names no bus is no bus (rootless podman's rule, which then falls back to cgroupfs): a
  // container that needs no cgroup runs without a scope, one with a limit is refused in one line, before
  // anything asks the user's systemd.
  const lost = { DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' };
  const plainRun = user.run(POC, ['run', '--rm', '--network', 'none', 'busybox', 'cat', '/proc/self/cgroup'], { extraEnv: lost, timeout: 90_000 });
  t.equal(plainRun.status, 0, `run without limits and without the bus: ${plainRun.stderr}`);
  t.notMatch(String(plainRun.stdout), /poc-[0-9a-f]+\.scope/, 'no scope of its own');
  const limited = user.run(POC, ['run', '--rm', '--network', 'none', '--pids-limit', '5', 'busybox', 'true'], { extraEnv: lost, timeout: 90_000 });
  t.not(limited.status, 0);
  t.match(limited.stderr, /^poc: --pids-limit needs a cgroup of the container's own, which a rootless container gets only from a cgroup delegated to the user: on this host none is/, 'a limit without the bus');
  t.equal(String(limited.stderr).trim().split('\n').length, 1, `one line: ${limited.stderr}`);
  t.same(entries(join(store(user), 'containers')), [], 'no container left');
});

t.test('what needs root is refused with one clear line, and leaves nothing', async (t) => {
  const table: Array<[string[], RegExp]> = [
    [['run', '--rm', '--network', 'bridge', 'busybox', 'true'], /--network bridge needs root \(the bridge pocbr0/],
    [['run', '--rm', '--network', 'host', 'busybox', 'true'], /--network host needs root/],
    [['run', '--rm', '--network', 'none', '-p', '8080:80', 'busybox', 'true'], /-p needs --network/],
    [['run', '--rm', '--network', 'pasta:--netns,/run/netns/x', 'busybox', 'true'], /invalid --network pasta:--netns,\/run\/netns\/x: --netns is not for poc's pasta: poc runs pasta on the container's network namespace/],
    [['run', '--rm', '--network', 'pasta:-P,/tmp/pid', 'busybox', 'true'], /-P is not for poc's pasta/],
    [['run', '--rm', '--network', 'pasta:--debug', 'busybox', 'true'], /--debug is not for poc's pasta: poc quotes pasta's messages only when it fails/],
    [['run', '--rm', '--network', 'pasta:--no-such-option', 'busybox', 'true'], /"--no-such-option" is not an option of pasta\(1\)/],
    [['run', '--rm', '--network', 'pasta:8080', 'busybox', 'true'], /"8080" is not an option \(pasta would take it for a PID or a command to run\)/],
    [['run', '--rm', '--network', 'pasta:-t', 'busybox', 'true'], /-t needs a value/],
    // Well-formed, and refused by pasta itself: its message, pasta and the container gone.
    [['run', '--rm', '--network', 'pasta:-a,not-an-address', 'busybox', 'true'], /pasta failed: Invalid address: not-an-address$/m],
  ];
  for (const [args, want] of table) {
    const r = poc(user, args);
    t.not(r.status, 0, `${args.join(' ')}: non-zero`);
    t.match(r.stderr, want, `${args.join(' ')}: ${r.stderr.trim()}`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line`);
  }
  // Network helpers that fail as they start, stand-ins first on PATH (the real ones cannot be made to): a pasta that
  // never gets ready (never writes its pid), held to the monitor's 10 s bound, and a slirp4netns that exits at once
  // with its words; each then the same clean failure.
  const standIns: Array<[string, string, RegExp]> = [
    ['pasta', 'echo "stuck before its pid file" >&2\nexec sleep 60', /^poc: .*pasta did not set up the network within 10 s: stuck before its pid file$/m],
    ['slirp4netns', 'echo "no tap device here" >&2\nexit 1', /^poc: .*slirp4netns failed: no tap device here$/m],
  ];
  for (const [program, script, want] of standIns) {
    const fake = join(work, `failing-${program}`);
    mkdirSync(fake, { recursive: true });
    writeFileSync(join(fake, program), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    chmodSync(fake, 0o755);
    const r = user.run(POC, ['run', '--rm', '--network', program, 'busybox', 'true'], { extraEnv: { PATH: `${fake}:${user.env.PATH}` }, timeout: 90_000 });
    t.not(r.status, 0, `a ${program} that fails as it starts: non-zero`);
    t.match(r.stderr, want, `${program}: its words: ${r.stderr.trim()}`);
    t.equal(String(r.stderr).trim().split('\n').length, 1, `${program}: one line`);
    t.same(entries(join(store(user), 'containers')), [], `${program}: no container left`);
    t.same(liveProcesses(user), [], `${program}: no process left (${program}, monitors)`);
    t.same(entries(join(runDir(user), 'runtime')), [], `${program}: no runtime state left`);
  }
  // A pasta that gets ready, then exits by itself with its reason: the monitor quotes its last line.
  const dying = join(work, 'dying-pasta');
  mkdirSync(dying, { recursive: true });
  writeFileSync(join(dying, 'pasta'), [
    '#!/bin/sh',
    'while [ $# -gt 0 ]; do [ "$1" = --pid ] && echo $$ > "$2"; shift; done',
    'echo "a message before" >&2',
    'sleep 0.5; echo "tap device gone" >&2; exit 3',
  ].join('\n'), { mode: 0o755 });
  chmodSync(dying, 0o755);
  const r = user.run(POC, ['run', '-d', '--name', 'dying', '--network', 'pasta', 'busybox', 'sleep', '60'], { extraEnv: { PATH: `${dying}:${user.env.PATH}` }, timeout: 90_000 });
  t.equal(r.status, 0, `run -d with a pasta that exits later: ${r.stderr}`);
  let error = '';
  for (const deadline = Date.now() + 30_000; !error && Date.now() < deadline;) {
    await new Promise((res) => setTimeout(res, 50));
    error = JSON.parse(poc(user, ['inspect', 'dying']).stdout)[0].State.Error;
  }
  t.match(error, /^pasta \(pid \d+\), the container's network, exited with status 3: tap device gone: the container has no network now$/, 'its status and its last line');
  t.same(poc(user, ['logs', 'dying']).stderr.split('\n').filter((l) => l.startsWith('poc-monitor: ')), [`poc-monitor: ${error}`], 'said once in its log');
  t.equal(poc(user, ['rm', '-f', 'dying']).status, 0);
  t.same(liveProcesses(user), [], 'nothing left running');
});

t.test("nothing of the users' is left", async (t) => {
  for (const who of [user, plain]) {
    t.same(entries(join(store(who), 'containers')), [], `${who.name}: containers`);
    t.same(entries(join(runDir(who), 'runtime')), [], `${who.name}: runtime state`);
    t.same(entries(join(runDir(who), 'sock')), [], `${who.name}: sockets`);
    t.same(liveProcesses(who), [], `${who.name}: processes`);
  }
  if (user.manager) {
    const units = user.run('systemctl', ['--user', '--no-pager', 'list-units', '--all', '--plain', '--no-legend', 'poc-*']).stdout.trim();
    t.equal(units, '', "no unit of poc's left in the user's systemd");
  }
  const rmi = poc(user, ['rmi', 'owned']);
  t.equal(rmi.status, 0, `rmi of an image with files of subordinate ids: ${rmi.stderr}`);
  const names = [user.name, plain.name];
  user.remove();
  plain.remove();
  for (const name of names) t.same(userResidue(name), [], `${name} is gone from passwd, group, subuid, subgid`);
});
