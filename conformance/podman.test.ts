/**
 * podman runs its containers with pocrun (`--runtime`), through conmon, as it runs them with runc.
 *
 * Everything is private to the test: podman's store (--root, --runroot, --tmpdir), its containers.conf, storage.conf
 * and registries.conf (no registry: the image is `podman import`ed from the busybox rootfs, pull_policy never),
 * file locks, file events, k8s-file logs, and the cgroupfs manager with a cgroup parent of the test's own (or,
 * with POC_CONFORMANCE_CGROUP_MANAGER=systemd, podman's systemd manager with a slice of the test's own).
 * podman and everything it starts (conmon, netavark, the containers) run in a network namespace the test makes:
 * netavark's bridge, its firewall rules and its ip_forward setting live and die there, never on the host. That
 * namespace plays the host for `-p`: the published port is reached on its 127.0.0.1.
 *
 * The hard open-file limit here is below podman's default (1048576) and CAP_SYS_RESOURCE is missing, so
 * containers.conf sets default_ulimits within the hard limits.
 */
import t from 'tap';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, rmdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { busyboxRootfs } from '../test/helpers/runtime.js';
import {
  CGROUP_MANAGER, IS_POCRUN, RUNTIME, SYSTEMD, commandExists, hostCgroupDir, must, mountsUnder, processesMentioning, removeCgroupTree, sh,
  stopSlice, unitsMentioning, waitFor, writePodmanConfig, type Result,
} from '../test/helpers/engines.js';

const IMAGE = 'localhost/busybox:conformance';
const work = mkdtempSync(join(tmpdir(), 'pocrun-podman-'));
const netns = `pocrun-podman-${process.pid}`;
// systemd: a slice (one name, no dash: systemd would nest dashed parts), as podman requires of --cgroup-parent.
const cgroupParent = SYSTEMD ? `pocrunconformance${process.pid}.slice` : `pocrun-conformance-${process.pid}`;
const dirs = { root: join(work, 'root'), runroot: join(work, 'runroot'), tmp: join(work, 'tmp'), net: join(work, 'net') };

mkdirSync(dirs.net, { recursive: true });
const env = {
  ...process.env,
  ...writePodmanConfig(work, { graphroot: dirs.root, runroot: dirs.runroot, cgroupManager: CGROUP_MANAGER, networkConfigDir: dirs.net }),
};
const globalFlags = [
  '--root', dirs.root, '--runroot', dirs.runroot, '--tmpdir', dirs.tmp, '--network-config-dir', dirs.net,
  '--runtime', RUNTIME, '--cgroup-manager', CGROUP_MANAGER, '--events-backend', 'file', '--storage-driver', 'overlay',
];

/** podman in the test's network namespace; `run` and `create` get the test's cgroup parent and k8s-file logs. */
function podman(args: string[], timeout = 60_000): Result {
  const [cmd, ...rest] = args;
  const parent = SYSTEMD ? cgroupParent : `/${cgroupParent}`;
  const extra = cmd === 'run' || cmd === 'create' ? ['--cgroup-parent', parent, '--log-driver', 'k8s-file'] : [];
  return sh('nsenter', [`--net=/run/netns/${netns}`, 'podman', ...globalFlags, cmd!, ...extra, ...rest], { env, timeout });
}

function ok(args: string[]): string {
  const r = podman(args);
  if (r.status !== 0) throw new Error(`podman ${args.join(' ')}: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Inside the test's network namespace: the "host" for published ports. */
function inNetns(args: string[]): Result {
  return sh('nsenter', [`--net=/run/netns/${netns}`, ...args], { timeout: 10_000 });
}

/** An assertion message: the exit status, and the output when it is not 0 (shown only when it fails). */
const status = (r: Result) => `exit status${r.status ? ` (${(r.stderr + r.stdout).trim().slice(-400)})` : ''}`;
const inspect = (name: string, format: string) => ok(['inspect', '--format', format, name]).trim();
const pidOf = (name: string) => Number(inspect(name, '{{.State.Pid}}'));

function frozen(pid: number): boolean {
  const dir = hostCgroupDir(pid, 'freezer');
  if (existsSync(join(dir, 'freezer.state'))) return readFileSync(join(dir, 'freezer.state'), 'utf8').trim() === 'FROZEN';
  return readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim() === '1';
}

/**
 * Files podman 4.3 keeps at fixed paths for root, whatever --root says: the image blob-info cache and netavark's
 * address allocations. Removed at the end (with their directories, when empty) if the test made them.
 */
const FIXED_FILES = ['/var/lib/containers/cache/blob-info-cache-v1.boltdb', '/run/containers/networks/ipam.db'];
const ourFixedFiles = FIXED_FILES.filter((f) => !existsSync(f));

const missing = ['podman', 'conmon', 'nsenter', 'ip'].filter((c) => !commandExists(c));
const ready = missing.length === 0 && process.getuid?.() === 0;

t.before(() => {
  if (!ready) return;
  must('ip', ['netns', 'add', netns]);
  must('ip', ['-n', netns, 'link', 'set', 'lo', 'up']);
  const rootfs = join(work, 'rootfs');
  busyboxRootfs(rootfs);
  must('tar', ['-C', rootfs, '-cf', join(work, 'busybox.tar'), '.']);
  rmSync(rootfs, { recursive: true, force: true });
  ok(['import', join(work, 'busybox.tar'), IMAGE]);
});

t.test('engine and runtime', async (t) => {
  t.same(missing, [], 'podman, conmon, nsenter and ip are installed (scripts/setup.sh installs them)');
  t.equal(process.getuid?.(), 0, 'root');
  if (!ready) return;
  t.comment(`runtime: ${RUNTIME}, cgroup manager: ${CGROUP_MANAGER}`);
  t.comment(`podman: ${ok(['--version']).trim()}`);
  t.equal(ok(['info', '--format', '{{.Host.CgroupManager}}']).trim(), CGROUP_MANAGER, 'podman uses the cgroup manager asked for');
  t.match(ok(['info', '--format', '{{.Host.OCIRuntime.Path}}']), RUNTIME, 'podman uses the runtime given by --runtime');
  t.match(ok(['images', '--format', '{{.Repository}}:{{.Tag}}']), IMAGE, 'the image was imported offline');
});

t.test('podman', { skip: !ready }, async (t) => {
  t.test('run --rm echo', async (t) => {
    const r = podman(['run', '--rm', IMAGE, 'echo', 'hello from podman']);
    t.equal(r.status, 0, status(r));
    t.equal(r.stdout, 'hello from podman\n');
    t.equal(ok(['ps', '-a', '-q']), '', '--rm removed the container');
  });

  t.test('the exit code of the container is podman run\'s', async (t) => {
    t.equal(podman(['run', '--rm', IMAGE, 'sh', '-c', 'exit 7']).status, 7);
    t.equal(podman(['run', '--rm', IMAGE, 'true']).status, 0);
  });

  t.test("a failing container shows the runtime's error", async (t) => {
    const r = podman(['run', '--rm', IMAGE, 'no-such-command']);
    t.equal(r.status, 127, 'podman says: command not found');
    t.match(r.stderr, /"no-such-command": executable file not found in \$PATH/);
    // pocrun's own words, read by podman from the JSON log it wrote (--log-format json --log FILE).
    if (IS_POCRUN) t.match(r.stderr, /config\.json \/process\/args/, "pocrun's message, with the config field");

    // The log conmon gave the runtime (--log-format json --log userdata/oci-log): runc-shaped JSON lines.
    const c = podman(['create', '--name', 'fail1', IMAGE, 'no-such-command']);
    t.equal(c.status, 0, status(c));
    const start = podman(['start', 'fail1']);
    t.equal(start.status, 125, 'podman start: the runtime failed');
    t.match(start.stderr, /executable file not found/);
    const id = inspect('fail1', '{{.Id}}');
    const log = readFileSync(join(dirs.runroot, 'overlay-containers', id, 'userdata', 'oci-log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const error = log.find((l) => l.level === 'error');
    t.match(error, { level: 'error', msg: /executable file not found/, time: /^\d{4}-\d\d-\d\dT/ }, 'an error line: level, msg, time');
    ok(['rm', '-f', 'fail1']);
  });

  t.test('run -d, ps, logs, exec, pause/unpause, stop', async (t) => {
    const script = 'trap "echo got-TERM; exit 0" TERM; echo started; while :; do sleep 0.1; done';
    ok(['run', '-d', '--name', 'd1', IMAGE, 'sh', '-c', script]);
    waitFor('the container to start', () => (ok(['logs', 'd1']).includes('started') ? true : undefined));
    t.match(ok(['ps', '--format', '{{.Names}} {{.Status}}']), /^d1 Up/m, 'ps lists it, up');
    t.equal(ok(['logs', 'd1']), 'started\n', 'logs');

    t.equal(ok(['exec', 'd1', 'sh', '-c', 'echo exec as $(id -u)']), 'exec as 0\n', 'exec');
    t.equal(ok(['exec', '--user', '1000', '--env', 'FOO=bar', '--workdir', '/tmp', 'd1', 'sh', '-c', 'echo $(id -u):$(id -g) $FOO $(pwd)']),
      '1000:1000 bar /tmp\n', 'exec --user --env --workdir');
    t.equal(podman(['exec', 'd1', 'sh', '-c', 'exit 5']).status, 5, "exec's exit code");
    const tty = podman(['exec', '-t', 'd1', 'sh', '-c', 'tty; [ -t 0 ] && [ -t 1 ] && echo both-ttys']);
    t.equal(tty.status, 0, status(tty));
    t.match(tty.stdout, /^\/dev\/pts\/\d+\r\n/, 'exec -t: a terminal');
    t.match(tty.stdout, /both-ttys/);

    const pid = pidOf('d1');
    ok(['pause', 'd1']);
    t.equal(inspect('d1', '{{.State.Status}}'), 'paused');
    t.ok(frozen(pid), 'frozen on the host');
    t.not(podman(['exec', 'd1', 'true']).status, 0, 'no exec in a paused container');
    ok(['unpause', 'd1']);
    t.equal(inspect('d1', '{{.State.Status}}'), 'running');
    t.notOk(frozen(pid), 'thawed');
    t.equal(ok(['exec', 'd1', 'echo', 'after-unpause']), 'after-unpause\n');

    const stop = podman(['stop', '-t', '20', 'd1']);
    t.equal(stop.status, 0, status(stop));
    t.equal(inspect('d1', '{{.State.Status}}'), 'exited');
    t.equal(inspect('d1', '{{.State.ExitCode}}'), '0', 'the container ended on SIGTERM by its own trap');
    t.equal(ok(['logs', 'd1']), 'started\ngot-TERM\n', 'SIGTERM reached the container');
    ok(['rm', 'd1']);
    t.equal(ok(['ps', '-a', '-q']), '');
  });

  t.test('kill, kill --signal, rm -f', async (t) => {
    ok(['run', '-d', '--name', 'k1', IMAGE, 'sleep', '1000']);
    ok(['kill', 'k1']);
    t.equal(ok(['wait', 'k1']).trim(), '137', 'kill: SIGKILL');
    ok(['rm', 'k1']);

    ok(['run', '-d', '--name', 'k2', IMAGE, 'sh', '-c', 'trap "exit 42" USR1; echo ready; while :; do sleep 0.1; done']);
    waitFor('the trap', () => (ok(['logs', 'k2']).includes('ready') ? true : undefined));
    ok(['kill', '--signal', 'USR1', 'k2']);
    t.equal(ok(['wait', 'k2']).trim(), '42', 'kill --signal USR1 reached the trap');
    ok(['rm', 'k2']);

    ok(['run', '-d', '--name', 'k3', IMAGE, 'sleep', '1000']);
    const pid = pidOf('k3');
    ok(['rm', '-f', '-t', '0', 'k3']);
    t.equal(ok(['ps', '-a', '-q']), '', 'rm -f removed a running container');
    waitFor('the init to go', () => (existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z') ? undefined : true));
    t.pass('its init is gone');
  });

  t.test('run -t', async (t) => {
    const r = podman(['run', '--rm', '-t', IMAGE, 'sh', '-c', 'tty; stty size >/dev/null && echo has-size; exit 3']);
    t.equal(r.status, 3, status(r));
    t.match(r.stdout, /^\/dev\/pts\/\d+\r\n/, 'the container has a terminal');
    t.match(r.stdout, /has-size/);
  });

  t.test('--memory and --pids-limit: inside the container and on the host', async (t) => {
    const inside = ok(['run', '--rm', '--memory', '64m', '--pids-limit', '50', IMAGE, 'sh', '-c',
      'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max']);
    t.equal(inside, `${64 * 1024 * 1024}\n50\n`);
    ok(['run', '-d', '--name', 'm1', '--memory', '64m', '--pids-limit', '50', IMAGE, 'sleep', '1000']);
    const pid = pidOf('m1');
    const mem = hostCgroupDir(pid, 'memory');
    t.match(mem, cgroupParent, 'under the cgroup parent podman was given');
    if (SYSTEMD) {
      const id = inspect('m1', '{{.Id}}');
      t.match(mem, new RegExp(`^/sys/fs/cgroup(/memory)?/${cgroupParent}/libpod-${id}\\.scope$`), 'the scope podman named (slice:libpod:id)');
      // cgroup v1 (a hybrid host) has MemoryLimit where v2 has MemoryMax.
      const memoryProperty = mem.startsWith('/sys/fs/cgroup/memory/') ? 'MemoryLimit' : 'MemoryMax';
      const unit = sh('systemctl', ['show', `libpod-${id}.scope`, '-p', 'Delegate', '-p', memoryProperty, '-p', 'TasksMax']).stdout;
      t.equal(unit, `Delegate=yes\n${memoryProperty}=${64 * 1024 * 1024}\nTasksMax=50\n`, 'systemd knows the limits');
    }
    const limit = existsSync(join(mem, 'memory.limit_in_bytes')) ? 'memory.limit_in_bytes' : 'memory.max';
    t.equal(readFileSync(join(mem, limit), 'utf8').trim(), String(64 * 1024 * 1024), `host ${limit}`);
    t.equal(readFileSync(join(hostCgroupDir(pid, 'pids'), 'pids.max'), 'utf8').trim(), '50', 'host pids.max');
    ok(['rm', '-f', '-t', '0', 'm1']);
  });

  t.test('--network none: only lo, and it is up', async (t) => {
    const r = ok(['run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'ls /sys/class/net; ip -o -4 addr show lo; ping -c1 -W2 127.0.0.1 >/dev/null && echo lo-ok']);
    const [ifaces, ...rest] = r.split('\n');
    t.equal(ifaces, 'lo', 'no interface but lo');
    t.match(rest.join('\n'), /inet 127\.0\.0\.1\/8/);
    t.match(r, /lo-ok/);
  });

  t.test("the default bridge: the container pings its gateway (podman's bridge, in the test's namespace)", async (t) => {
    const gateway = ok(['network', 'inspect', 'podman', '--format', '{{range .Subnets}}{{.Gateway}}{{end}}']).trim();
    t.match(gateway, /^\d+\.\d+\.\d+\.\d+$/, `podman's default network has gateway ${gateway}`);
    const r = podman(['run', '--rm', IMAGE, 'sh', '-c', 'ip -4 route show default; ping -c1 -W3 "$(ip -4 route show default | cut -d" " -f3)"']);
    t.equal(r.status, 0, status(r));
    t.match(r.stdout, new RegExp(`default via ${gateway.replace(/\./g, '\\.')} `));
    t.match(r.stdout, /1 packets received/);
  });

  t.test('-p: a published port reached on 127.0.0.1', async (t) => {
    const port = 18080;
    ok(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:8080`, IMAGE, 'sh', '-c',
      'mkdir -p /www && echo hello-from-the-container > /www/index.html && exec httpd -f -p 8080 -h /www']);
    const body = waitFor('the published port', () => {
      // (busybox 1.35's wget -T crashes: timeout(1) bounds it instead)
      const r = inNetns(['timeout', '5', 'busybox', 'wget', '-q', '-O', '-', `http://127.0.0.1:${port}/`]);
      return r.status === 0 ? r.stdout : undefined;
    });
    t.equal(body, 'hello-from-the-container\n');
    ok(['rm', '-f', '-t', '0', 'web']);
  });

  t.test('--read-only', async (t) => {
    const r = podman(['run', '--rm', '--read-only', IMAGE, 'sh', '-c', 'touch /x; echo tmp > /tmp/y && cat /tmp/y && ls /etc/passwd']);
    t.equal(r.status, 0, status(r));
    t.match(r.stderr, /Read-only file system/, 'the root is read-only');
    t.equal(r.stdout, 'tmp\n/etc/passwd\n', 'podman\'s tmpfs on /tmp is writable (tmpcopyup)');
  });

  t.test('--user 1000', async (t) => {
    t.equal(ok(['run', '--rm', '--user', '1000', IMAGE, 'sh', '-c', 'echo $(id -u):$(id -g); touch /root/x 2>&1 || echo denied']),
      '1000:1000\ntouch: /root/x: Permission denied\ndenied\n');
  });

  t.test('--cap-drop ALL, --cap-drop, --cap-add', async (t) => {
    const caps = (flags: string[], script: string) => ok(['run', '--rm', '--network', 'none', ...flags, IMAGE, 'sh', '-c', script]);
    const capEff = 'grep CapEff /proc/self/status | cut -f2';
    t.equal(caps(['--cap-drop', 'ALL'], `${capEff}; grep CapBnd /proc/self/status | cut -f2`), '0000000000000000\n0000000000000000\n');
    const eff = (s: string) => BigInt(`0x${s.trim()}`);
    const CHOWN = 0n;
    const NET_ADMIN = 12n;
    const base = eff(caps([], capEff));
    t.ok(base & (1n << CHOWN), 'CHOWN by default');
    t.notOk(base & (1n << NET_ADMIN), 'no NET_ADMIN by default');
    const chown = caps(['--cap-drop', 'CHOWN'], `${capEff}; touch /f; chown 1000 /f 2>/dev/null && echo chowned || echo no-chown`).split('\n');
    t.notOk(eff(chown[0]!) & (1n << CHOWN), '--cap-drop CHOWN');
    t.equal(chown[1], 'no-chown', 'chown is refused');
    const admin = caps(['--cap-add', 'NET_ADMIN'], `${capEff}; ip link set lo mtu 1400 && echo set-mtu`).split('\n');
    t.ok(eff(admin[0]!) & (1n << NET_ADMIN), '--cap-add NET_ADMIN');
    t.equal(admin[1], 'set-mtu', 'an operation that needs NET_ADMIN works');
  });

  t.equal(ok(['ps', '-a', '-q']), '', 'no container is left');
});

let cleaned = false;

/** Removes everything the tests made; returns what could not be removed. */
function cleanup(): { processes: string[]; mounts: string[]; cgroups: string[]; units: string[] } {
  cleaned = true;
  if (ready) {
    podman(['rm', '-a', '-f', '-t', '0']);
    podman(['system', 'reset', '-f'], 120_000);
    // conmon's exit commands (podman container cleanup) may still be finishing.
    try {
      waitFor('podman processes to end', () => (processesMentioning(work).length ? undefined : true), 20_000);
    } catch {
      /* reported */
    }
    for (const m of mountsUnder(work).reverse()) sh('umount', ['-l', m]);
    if (existsSync(`/run/netns/${netns}`)) sh('ip', ['netns', 'del', netns]);
  }
  // With systemd: the scopes podman had made (libpod-<id>, libpod-conmon-<id>) must be gone; the slice is ours.
  const units = unitsMentioning('libpod');
  stopSlice(cgroupParent);
  const left = { processes: processesMentioning(work), mounts: mountsUnder(work), cgroups: removeCgroupTree(cgroupParent), units: [...units, ...unitsMentioning(cgroupParent)] };
  rmSync(work, { recursive: true, force: true });
  for (const file of ourFixedFiles) {
    rmSync(file, { force: true });
    for (let dir = dirname(file); dir !== '/var/lib' && dir !== '/run'; dir = dirname(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        break; // not empty: someone else's
      }
    }
  }
  return left;
}

t.test('nothing left behind: containers, storage mounts, network namespace, cgroups, units, processes', async (t) => {
  const left = cleanup();
  t.same(left, { processes: [], mounts: [], cgroups: [], units: [] });
  t.notOk(existsSync(`/run/netns/${netns}`), 'network namespace removed');
  t.notOk(existsSync(work), 'work directory removed');
});

t.teardown(() => {
  if (!cleaned) cleanup();
});
