/**
 * Rootless podman runs its containers with pocrun (`--runtime`), as an ordinary user the test makes, as it runs
 * them with runc (POC_CONFORMANCE_RUNTIME=runc: the same steps with runc).
 *
 * podman re-executes itself in a user namespace of its own (newuidmap/newgidmap with the user's subuid and subgid
 * ranges) and calls the runtime there, as root of that namespace. On this host (cgroup v1) a rootless container
 * has no cgroup: podman's cgroupfs manager, and pause and limits are podman's own refusals. In the guest with
 * POC_CONFORMANCE_CGROUP_MANAGER=systemd, podman's systemd manager: the user lingers, and its own systemd gives
 * each container a scope with its limits, and pause. Everything is the
 * test's: the user, its home (podman's store, overlay in the user namespace), its XDG_RUNTIME_DIR, podman's
 * configuration files, and a network namespace it makes, in which podman runs: slirp4netns and rootlessport
 * publish `-p` on that namespace's 127.0.0.1, never the host's.
 */
import t from 'tap';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxRootfs } from '../test/helpers/runtime.js';
import { chownTree, makeTestUser, userResidue } from '../test/helpers/rootless.js';
import { CGROUP_MANAGER, IS_POCRUN, RUNTIME, SYSTEMD, commandExists, mountsUnder, must, sh, waitFor, writePodmanConfig, type Result } from '../test/helpers/engines.js';

const IMAGE = 'localhost/busybox:rootless';
const work = mkdtempSync(join(tmpdir(), 'pocrun-podman-rootless-'));
chmodSync(work, 0o755);
const netns = `pocrun-podman-rl-${process.pid}`;
const missing = ['podman', 'conmon', 'nsenter', 'ip', 'newuidmap', 'slirp4netns', 'runuser', 'useradd'].filter((c) => !commandExists(c));
const ready = missing.length === 0 && process.getuid?.() === 0;
const user = ready ? makeTestUser(work, { prefix: 'pocpm' }) : undefined;
// POC_CONFORMANCE_CGROUP_MANAGER=systemd (in the guest): podman's systemd manager, as rootless podman runs on a
// systemd host: the user lingers, so logind starts its own systemd (user@UID.service, cpu, memory and pids
// delegated), and podman and the runtime ask it for scopes on the user's bus.
const cgroupManager = CGROUP_MANAGER;
const runtimeDir = user && SYSTEMD ? `/run/user/${user.uid}` : user?.runtimeDir ?? '';

const conf = join(work, 'conf');
const store = user ? { root: join(user.home, 'storage'), runroot: join(runtimeDir, 'containers') } : { root: '', runroot: '' };
let podmanEnv: Record<string, string> = {};
if (user && SYSTEMD) {
  sh('loginctl', ['enable-linger', user.name]);
  sh('systemctl', ['start', `user@${user.uid}.service`]);
  waitFor("the user's bus", () => (existsSync(`${runtimeDir}/bus`) ? true : undefined), 60_000);
}
const userEnv = () => (SYSTEMD ? { ...podmanEnv, XDG_RUNTIME_DIR: runtimeDir, DBUS_SESSION_BUS_ADDRESS: `unix:path=${runtimeDir}/bus` } : podmanEnv);

/** podman as the user, in the test's network namespace. */
function podman(args: string[], timeout = 90_000): Result {
  const flags = ['--runtime', RUNTIME, '--cgroup-manager', cgroupManager, '--events-backend', 'file'];
  return sh('nsenter', [`--net=/run/netns/${netns}`, ...user!.prefix(userEnv()), 'podman', ...flags, ...args], { timeout });
}

function ok(args: string[]): string {
  const r = podman(args);
  if (r.status !== 0) throw new Error(`podman ${args.join(' ')}: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

const status = (r: Result) => `exit status${r.status ? ` (${(r.stderr + r.stdout).trim().slice(-400)})` : ''}`;
const inspect = (name: string, format: string) => ok(['inspect', '--format', format, name]).trim();
const pidOf = (name: string) => Number(inspect(name, '{{.State.Pid}}'));

t.before(() => {
  if (!ready) return;
  mkdirSync(conf);
  podmanEnv = writePodmanConfig(conf, { graphroot: store.root, runroot: store.runroot, cgroupManager });
  chmodSync(conf, 0o755);
  must('ip', ['netns', 'add', netns]);
  must('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  const rootfs = join(work, 'rootfs');
  busyboxRootfs(rootfs);
  must('tar', ['-C', rootfs, '-cf', join(work, 'busybox.tar'), '.']);
  rmSync(rootfs, { recursive: true, force: true });
  chownTree(join(work, 'busybox.tar'), user!.uid, user!.gid);
  ok(['import', join(work, 'busybox.tar'), IMAGE]);
});

t.test('engine and runtime', async (t) => {
  t.same(missing, [], 'podman, conmon, newuidmap, slirp4netns... are installed (scripts/setup.sh installs them)');
  t.equal(process.getuid?.(), 0, 'root, to make the user');
  if (!ready) return;
  t.comment(`runtime: ${RUNTIME}, user: ${user!.name} (${user!.uid}), ranges ${JSON.stringify(user!.subuid)}`);
  t.equal(ok(['info', '--format', '{{.Host.Security.Rootless}}']).trim(), 'true', 'podman runs rootless');
  t.equal(ok(['info', '--format', '{{.Host.CgroupManager}}']).trim(), cgroupManager);
  t.match(ok(['info', '--format', '{{.Host.OCIRuntime.Path}}']), RUNTIME, 'podman uses the runtime given by --runtime');
  t.match(ok(['images', '--format', '{{.Repository}}:{{.Tag}}']), IMAGE, 'the image was imported offline');
});

t.test('rootless podman', { skip: !ready }, async (t) => {
  // (Each attached `podman run` costs ~20 s here, with runc as with pocrun: podman waits for its conmon to be gone,
  // and this machine's pid 1 reaps it late. So the checks share few containers.)
  t.test("run --rm: output, the exit code, ids mapped from the user's ranges, --network none with lo up", async (t) => {
    const r = podman(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c',
      'echo hello; id -u; cat /proc/self/uid_map; ls /sys/class/net; ip -o -4 addr show lo | grep -o "inet [0-9./]*"; exit 7']);
    t.equal(r.status, 7, `the container's exit code; ${status(r)}`);
    const { uid, subuid } = user!;
    t.match(r.stdout, new RegExp(`^hello\\n0\\n\\s+0\\s+${uid}\\s+1\\n\\s+1\\s+${subuid!.start}\\s+${subuid!.count}\\n`), "root is the user, then the user's subuid range");
    t.match(r.stdout, /\nlo\ninet 127\.0\.0\.1\/8\n$/, '--network none: only lo, and it is up');
    t.equal(ok(['ps', '-a', '-q']), '', '--rm removed the container');
  });

  t.test("a failing container shows the runtime's error", async (t) => {
    const r = podman(['run', '--rm', '--network', 'none', IMAGE, 'no-such-command']);
    t.equal(r.status, 127, 'podman says: command not found');
    t.match(r.stderr, /"no-such-command": executable file not found in \$PATH/);
    if (IS_POCRUN) t.match(r.stderr, /config\.json \/process\/args/, "pocrun's message, with the config field");
  });

  t.test('run -d, ps, logs, exec, stop; a file of uid 1000 belongs to subuid + 999', async (t) => {
    const vol = join(user!.home, 'vol');
    mkdirSync(vol);
    chownTree(vol, user!.uid, user!.gid);
    chmodSync(vol, 0o1777); // for uid 1000 in the container too
    const script = 'trap "echo got-TERM; exit 0" TERM; echo started; while :; do sleep 0.1; done';
    ok(['run', '-d', '--network', 'none', '--name', 'd1', '-v', `${vol}:/vol`, IMAGE, 'sh', '-c', script]);
    waitFor('the container to start', () => (ok(['logs', 'd1']).includes('started') ? true : undefined));
    t.match(ok(['ps', '--format', '{{.Names}} {{.Status}}']), /^d1 Up/m, 'ps lists it, up');
    t.equal(ok(['exec', 'd1', 'sh', '-c', 'echo exec as $(id -u)']), 'exec as 0\n', 'exec');
    t.equal(ok(['exec', '--user', '1000', '--env', 'FOO=bar', '--workdir', '/tmp', 'd1', 'sh', '-c', 'echo $(id -u):$(id -g) $FOO $(pwd)']),
      '1000:1000 bar /tmp\n', 'exec --user --env --workdir');
    t.equal(podman(['exec', 'd1', 'sh', '-c', 'exit 5']).status, 5, "exec's exit code");
    const tty = podman(['exec', '-t', 'd1', 'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo both-ttys']);
    t.equal(tty.status, 0, status(tty));
    t.match(tty.stdout, /^\/dev\/pts\/\d+\r\n/, 'exec -t: a terminal');
    ok(['exec', '--user', '1000', 'd1', 'touch', '/vol/by-1000']);
    ok(['exec', 'd1', 'touch', '/vol/by-root']);
    const owner = (f: string) => ownerOf(join(vol, f));
    t.same(owner('by-1000'), [user!.subuid!.start + 999, user!.subgid!.start + 999], 'uid 1000 in the container: subuid start + 999 on the host');
    t.same(owner('by-root'), [user!.uid, user!.gid], 'root in the container: the user');

    const stop = podman(['stop', '-t', '20', 'd1']);
    t.equal(stop.status, 0, status(stop));
    t.equal(inspect('d1', '{{.State.ExitCode}}'), '0', 'the container ended on SIGTERM by its own trap');
    t.equal(ok(['logs', 'd1']), 'started\ngot-TERM\n', 'SIGTERM reached the container');
    ok(['rm', 'd1']);
  });

  t.test('kill, kill --signal, rm -f', async (t) => {
    // Both killed before either is waited for: their waits overlap.
    ok(['run', '-d', '--network', 'none', '--name', 'k1', IMAGE, 'sleep', '1000']);
    ok(['run', '-d', '--network', 'none', '--name', 'k2', IMAGE, 'sh', '-c', 'trap "exit 42" USR1; echo ready; while :; do sleep 0.1; done']);
    waitFor('the trap', () => (ok(['logs', 'k2']).includes('ready') ? true : undefined));
    ok(['kill', 'k1']);
    ok(['kill', '--signal', 'USR1', 'k2']);
    t.equal(ok(['wait', 'k1']).trim(), '137', 'kill: SIGKILL');
    t.equal(ok(['wait', 'k2']).trim(), '42', 'kill --signal USR1 reached the trap');
    ok(['rm', 'k1', 'k2']);
    ok(['run', '-d', '--network', 'none', '--name', 'k3', IMAGE, 'sleep', '1000']);
    const pid = pidOf('k3');
    ok(['rm', '-f', '-t', '0', 'k3']);
    t.equal(ok(['ps', '-a', '-q']), '', 'rm -f removed a running container');
    waitFor('the init to go', () => (existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z') ? undefined : true));
    t.pass('its init is gone');
  });

  t.test('run -t, with --read-only, --user 1000 and --cap-drop ALL', async (t) => {
    const r = podman(['run', '--rm', '-t', '--network', 'none', '--read-only', '--user', '1000', '--cap-drop', 'ALL', IMAGE, 'sh', '-c',
      'tty; stty size >/dev/null && echo has-size; echo $(id -u):$(id -g); grep CapEff /proc/self/status | cut -f2; touch /x 2>/dev/null || echo ro; echo tmp > /tmp/y && cat /tmp/y; exit 3']);
    t.equal(r.status, 3, status(r));
    t.match(r.stdout, /^\/dev\/pts\/\d+\r\n/, 'a terminal');
    t.match(r.stdout, /\r\nhas-size\r\n1000:1000\r\n0000000000000000\r\nro\r\ntmp\r\n$/, 'with a size; uid 1000; no capabilities; a read-only root with a writable /tmp');
  });

  t.test("-p through slirp4netns and rootlessport: a published port reached on the namespace's 127.0.0.1", async (t) => {
    const port = 18081;
    ok(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:8080`, IMAGE, 'sh', '-c',
      'mkdir -p /www && echo hello-rootless > /www/index.html && exec httpd -f -p 8080 -h /www']);
    const body = waitFor('the published port', () => {
      const r = sh('nsenter', [`--net=/run/netns/${netns}`, 'timeout', '5', 'busybox', 'wget', '-q', '-O', '-', `http://127.0.0.1:${port}/`], { timeout: 10_000 });
      return r.status === 0 ? r.stdout : undefined;
    }, 20_000);
    t.equal(body, 'hello-rootless\n');
    ok(['rm', '-f', '-t', '0', 'web']);
  });

  t.test('--cap-add', async (t) => {
    ok(['run', '-d', '--network', 'none', '--cap-add', 'NET_ADMIN', '--name', 'c1', IMAGE, 'sleep', '1000']);
    t.equal(ok(['exec', 'c1', 'sh', '-c', 'ip link set lo mtu 1400 && echo set-mtu']), 'set-mtu\n', "NET_ADMIN in the container's own network namespace");
    ok(['rm', '-f', '-t', '0', 'c1']);
  });

  if (SYSTEMD) {
    t.test("systemd manager: limits in a scope of the user's systemd; pause and unpause", async (t) => {
      ok(['run', '-d', '--network', 'none', '--memory', '64m', '--pids-limit', '20', '--name', 'p1', IMAGE, 'sleep', '1000']);
      const pid = pidOf('p1');
      const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().replace(/^0::/, '');
      t.match(cgroup, new RegExp(`^/user\\.slice/user-${user!.uid}\\.slice/user@${user!.uid}\\.service/user\\.slice/libpod-[0-9a-f]{64}\\.scope(/|$)`), "a scope of the user's manager");
      // The scope's directory, or its container/ sub-cgroup (crun's layout) where the init is.
      const dir = `/sys/fs/cgroup${cgroup}`;
      const read = (f: string) => (existsSync(`${dir}/${f}`) ? readFileSync(`${dir}/${f}`, 'utf8') : readFileSync(`${dir}/../${f}`, 'utf8')).trim();
      t.same([read('memory.max'), read('pids.max')], [String(64 << 20), '20'], 'the limits hold');
      ok(['pause', 'p1']);
      t.equal(inspect('p1', '{{.State.Status}}'), 'paused');
      t.equal(read('cgroup.freeze'), '1', 'frozen');
      ok(['unpause', 'p1']);
      t.equal(inspect('p1', '{{.State.Status}}'), 'running');
      ok(['rm', '-f', '-t', '0', 'p1']);
    });
  } else {
    t.test('pause and limits: podman refuses them for a rootless container without cgroups (cgroup v1), whatever the runtime', async (t) => {
      ok(['run', '-d', '--network', 'none', '--name', 'p1', IMAGE, 'sleep', '1000']);
      const pause = podman(['pause', 'p1']);
      t.not(pause.status, 0);
      t.match(pause.stderr, /rootless|cgroup/i, `podman's reason: ${pause.stderr.trim()}`);
      ok(['rm', '-f', '-t', '0', 'p1']);
    });
  }

  t.equal(ok(['ps', '-a', '-q']), '', 'no container is left');
});

/** A file's owner and group on the host. */
function ownerOf(path: string): [number, number] {
  const r = sh('stat', ['-c', '%u %g', path]);
  const [u, g] = r.stdout.trim().split(' ').map(Number);
  return [u!, g!];
}

let cleaned = false;
function cleanup(): { processes: string[]; mounts: string[]; users: string[] } {
  cleaned = true;
  let processes: string[] = [];
  if (ready && user) {
    podman(['rm', '-a', '-f', '-t', '0']);
    podman(['system', 'reset', '-f'], 120_000);
    // podman's pause process holds its user namespace for the user's next podman command, by design; conmon's
    // exit commands may still be finishing. Anything else of the user's would be a container left behind.
    try {
      waitFor('the containers to end', () => (user.processes().filter((p) => !isPodmanPause(p)).length ? undefined : true), 20_000);
    } catch {
      /* reported */
    }
    processes = user.processes().filter((p) => !isPodmanPause(p) && !p.endsWith('<defunct>'));
    for (const m of mountsUnder(work).reverse()) sh('umount', ['-l', m]);
    if (existsSync(`/run/netns/${netns}`)) sh('ip', ['netns', 'del', netns]);
    if (SYSTEMD) {
      sh('loginctl', ['disable-linger', user.name]);
      sh('systemctl', ['stop', `user@${user.uid}.service`]);
    }
    user.remove();
  }
  const left = { processes, mounts: mountsUnder(work), users: user ? userResidue(user.name) : [] };
  rmSync(work, { recursive: true, force: true });
  return left;
}

function isPodmanPause(line: string): boolean {
  // (And, with the systemd manager, the user's own systemd and its bus, which logind starts and stops.)
  if (SYSTEMD && /systemd --user|\(sd-pam\)|dbus-daemon/.test(line)) return true;
  return /\bcatatonit -P\b|podman pause|\(podman pause\)/.test(line) || / \[?catatonit\]?$/.test(line);
}

t.test('nothing left behind: containers, processes, storage mounts, network namespace, the user', async (t) => {
  const left = cleanup();
  t.same(left, { processes: [], mounts: [], users: [] });
  t.notOk(existsSync(`/run/netns/${netns}`), 'network namespace removed');
  t.notOk(existsSync(work), 'work directory removed');
});

t.teardown(() => {
  if (!cleaned) cleanup();
});
