/**
 * poc's secure defaults and docker's run flags, planned without root: the default seccomp profile resolved per
 * container (architecture, capabilities, clone's and personality's arguments), --privileged, --device, the
 * docker-options parsers (each bad value one error naming the flag), and docker's flags poc refuses by name.
 */
import t from 'tap';
import { joinNegativeValues, RUN_FLAGS, runFlags } from '../../src/cli/poc.js';
import { parseFlags, splitAtFirstArg, type FlagSpec } from '../../src/cli/args.js';
import type { Spec } from '../../src/spec/generated/config.js';
import { CAPABILITIES } from '../../src/vocabulary/capabilities.js';
import { planBundle, resolveGroups, type BundleContext } from '../../src/poc/containers/bundle.js';
import { defaultSeccompProfile } from '../../src/poc/containers/default-seccomp.js';
import { checkUlimits, parseDevice, parseShmSize, parseTmpfs, parseUlimit, UNLIMITED } from '../../src/poc/containers/docker-options.js';
import { resolveRunFlags, type ContainerOptions, type RunFlags } from '../../src/poc/containers/options.js';
import { seccompFromProfile } from '../../src/poc/containers/seccomp-profile.js';
import { stopPlan } from '../../src/poc/containers/stop.js';
import { defaultImageConfig } from '../../src/poc/images/image-store.js';

const RUN_SPEC: FlagSpec = { ...RUN_FLAGS, string: [...RUN_FLAGS.string!, '_'], boolean: [...RUN_FLAGS.boolean!, 'help'], repeat: [...RUN_FLAGS.repeat!, '_'] };

function cli(argv: string[]): RunFlags {
  const [flags, positional] = splitAtFirstArg(joinNegativeValues(argv, RUN_SPEC), RUN_SPEC);
  const p = parseFlags(flags, RUN_SPEC, 'run');
  p.args = [...p.args, ...positional];
  return runFlags(p);
}

const files = { readFile: (): string => '', hostEnv: {}, cpuCount: 4, systemdRunning: false };
const resolve = (argv: string[]) => resolveRunFlags(cli([...argv, 'img']), files);

const CTX: BundleContext = {
  containerId: 'c'.repeat(64),
  name: 'web',
  hostname: 'cccccccccccc',
  rootfs: '/r',
  etcDir: '/e',
  user: { uid: 0, gid: 0 },
  hook: { path: '/poc', env: [] },
  arch: 'amd64',
  kernel: '6.1.0-13-amd64',
  volumePath: (name) => `/v/${name}`,
};
const bundle = (argv: string[], ctx: Partial<BundleContext> = {}): Spec =>
  planBundle(defaultImageConfig({ Cmd: ['sh'] }), resolve(argv) as ContainerOptions, { ...CTX, ...ctx });

/** The allowed syscalls of the profile as resolved for these capabilities on this architecture (args-free rules). */
function allowed(caps: string[], arch = 'amd64'): Set<string> {
  const s = seccompFromProfile(defaultSeccompProfile(), { caps, arch, kernel: '6.1.0' });
  return new Set(s.syscalls!.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));
}

t.test('the default profile: EPERM for the rest, native and compat architectures, conditions resolved per container', async (t) => {
  const s = bundle([]).linux!.seccomp!;
  t.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
  t.equal(s.defaultErrnoRet, 1, 'EPERM, as docker');
  t.same(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  t.same(bundle([], { arch: 'arm64' }).linux!.seccomp!.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  const plain = allowed(['CAP_CHOWN']);
  for (const name of ['read', 'openat', 'execve', 'futex', 'arch_prctl', 'ptrace', 'io_uring_setup']) t.ok(plain.has(name), `${name} allowed`);
  for (const name of ['mount', 'unshare', 'setns', 'keyctl', 'add_key', 'kexec_load', 'open_by_handle_at', 'reboot', 'bpf', 'clone', 'clone3', 'pivot_root', 'swapon']) {
    t.notOk(plain.has(name), `${name} not allowed without its capability`);
  }
  t.notOk(allowed(['CAP_CHOWN'], 'arm64').has('arch_prctl'), 'arch_prctl only on x86');
  t.ok(allowed(['CAP_CHOWN'], 'arm64').has('set_tls'), 'arm\'s own syscalls on arm');
  const admin = allowed(['CAP_SYS_ADMIN']);
  for (const name of ['mount', 'unshare', 'setns', 'clone', 'clone3', 'umount2']) t.ok(admin.has(name), `${name} with CAP_SYS_ADMIN`);
  t.ok(allowed(['CAP_SYS_PTRACE']).has('kcmp'));
  t.ok(allowed(['CAP_SYS_TIME']).has('clock_settime'));
  t.ok(allowed(['CAP_DAC_READ_SEARCH']).has('open_by_handle_at'));
  t.notOk(seccompFromProfile(defaultSeccompProfile(), { caps: [], arch: 'amd64', kernel: '4.4.0' }).syscalls!.some((r) => r.names.includes('ptrace')),
    'ptrace only from kernel 4.8');
});

t.test('the default profile: clone without namespace flags, clone3 ENOSYS, personality and socket by argument', async (t) => {
  const rules = (caps: string[], arch = 'amd64') => seccompFromProfile(defaultSeccompProfile(), { caps, arch, kernel: '6.1.0' }).syscalls!;
  const plain = rules([]);
  t.same(plain.filter((r) => r.names.includes('clone')), [{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, op: 'SCMP_CMP_MASKED_EQ' }] }]);
  t.same(rules([], 's390x').filter((r) => r.names.includes('clone')).map((r) => r.args![0]!.index), [1], 's390 has clone\'s flags second');
  t.same(plain.filter((r) => r.names.includes('clone3')), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }], 'clone3: ENOSYS, so libc falls back to clone');
  t.notOk(rules(['CAP_SYS_ADMIN']).some((r) => r.names.includes('clone3') && r.action === 'SCMP_ACT_ERRNO'), 'with CAP_SYS_ADMIN clone3 is allowed');
  t.same(plain.filter((r) => r.names.includes('personality')).map((r) => r.args![0]!.value), [0, 8, 0x20000, 0x20008, 0xffffffff]);
  t.same(plain.filter((r) => r.names.includes('socket')).map((r) => r.args), [[{ index: 0, value: 40, op: 'SCMP_CMP_NE' }]], 'every family but AF_VSOCK');
});

t.test('seccomp: unconfined, a file, and --privileged turn the default off', async (t) => {
  t.equal(bundle(['--security-opt', 'seccomp=unconfined']).linux!.seccomp, undefined);
  t.equal(bundle(['--privileged']).linux!.seccomp, undefined);
  const opts = resolveRunFlags(cli(['--security-opt', 'seccomp=p.json', 'img']), { ...files, readFile: () => '{"defaultAction":"SCMP_ACT_LOG"}' });
  t.same(planBundle(defaultImageConfig({ Cmd: ['sh'] }), opts, CTX).linux!.seccomp, { defaultAction: 'SCMP_ACT_LOG' });
  const old = { ...resolve([]), seccomp: undefined };
  t.equal(planBundle(defaultImageConfig({ Cmd: ['sh'] }), old, CTX).linux!.seccomp, undefined, 'a container recorded before the default keeps none');
});

t.test('--privileged: every capability poc has, the devices given, nothing masked, /sys writable', async (t) => {
  const node = { path: '/dev/sda', type: 'b', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 };
  const s = bundle(['--privileged'], { devices: [node], capabilities: CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE') });
  t.equal(s.process!.capabilities!.effective!.length, CAPABILITIES.length - 1);
  t.notOk(s.process!.capabilities!.bounding!.includes('CAP_SYS_RESOURCE'), 'not one poc lacks');
  t.same(s.linux!.devices, [node]);
  t.same(s.linux!.resources!.devices, [{ allow: true, access: 'rwm' }]);
  t.same([s.linux!.maskedPaths, s.linux!.readonlyPaths], [[], []]);
  t.same(s.mounts!.filter((m) => m.destination.startsWith('/sys')).map((m) => m.options!.includes('rw')), [true, true]);
  t.same(bundle([]).mounts!.filter((m) => m.destination.startsWith('/sys')).map((m) => m.options!.includes('ro')), [true, true], 'read-only otherwise');
  t.notOk(bundle(['--privileged', '--cap-drop', 'NET_RAW']).process!.capabilities!.effective!.includes('CAP_NET_RAW'), '--cap-drop still applies');
  t.equal(bundle(['--cap-add', 'ALL'], { capabilities: ['CAP_KILL'] }).process!.capabilities!.effective!.length, 1, 'ALL is what poc holds');
});

t.test('--device: the node at its container path, the cgroup access asked for', async (t) => {
  t.same(parseDevice('/dev/sda'), { host: '/dev/sda', container: '/dev/sda', access: 'rwm' });
  t.same(parseDevice('/dev/sda:/dev/xvda'), { host: '/dev/sda', container: '/dev/xvda', access: 'rwm' });
  t.same(parseDevice('/dev/sda:r'), { host: '/dev/sda', container: '/dev/sda', access: 'r' });
  t.same(parseDevice('/dev/sda:/dev/xvda:rw'), { host: '/dev/sda', container: '/dev/xvda', access: 'rw' });
  const node = { path: '/dev/xvda', type: 'b', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6, access: 'r' };
  const s = bundle(['--device', '/dev/sda:/dev/xvda:r'], { devices: [node] });
  t.same(s.linux!.devices, [{ path: '/dev/xvda', type: 'b', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 }]);
  t.same(s.linux!.resources!.devices, [{ allow: false, access: 'rwm' }, { allow: true, type: 'b', major: 8, minor: 0, access: 'r' }]);
});

t.test('the other docker flags in config.json', async (t) => {
  const cases: [string, string[], (s: Spec) => unknown, unknown][] = [
    ['--ulimit: rlimits, -1 unlimited', ['--ulimit', 'nofile=100:200', '--ulimit', 'core=-1'], (s) => s.process!.rlimits,
      [{ type: 'RLIMIT_NOFILE', soft: 100, hard: 200 }, { type: 'RLIMIT_CORE', soft: UNLIMITED, hard: UNLIMITED }]],
    ['--ulimit: the last of a name counts', ['--ulimit', 'nofile=1', '--ulimit', 'nofile=2'], (s) => s.process!.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 2, hard: 2 }]],
    ['no --ulimit: none set (poc\'s own are inherited)', [], (s) => s.process!.rlimits, undefined],
    ['--sysctl', ['--sysctl', 'net.ipv4.ip_forward=1', '--sysctl', 'kernel.shmmax=10'], (s) => s.linux!.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '10' }],
    ['--tmpfs: docker\'s noexec,nosuid,nodev, overridden', ['--tmpfs', '/run:exec,size=1m'], (s) => s.mounts!.find((m) => m.destination === '/run'),
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'exec', 'size=1m'] }],
    ['--shm-size', ['--shm-size', '8m'], (s) => s.mounts!.find((m) => m.destination === '/dev/shm')!.options!.filter((o) => o.startsWith('size=')), [`size=${8 * 1024 * 1024}`]],
    ['/dev/shm: 64m by default', [], (s) => s.mounts!.find((m) => m.destination === '/dev/shm')!.options!.filter((o) => o.startsWith('size=')), [`size=${64 * 1024 * 1024}`]],
  ];
  for (const [name, argv, pick, want] of cases) t.same(pick(bundle(argv)), want, name);
  const init = planBundle(defaultImageConfig({ Cmd: ['sh'] }), resolve(['--init']), { ...CTX, initBinary: '/usr/bin/catatonit' });
  t.same(init.process!.args, ['/dev/init', '--', 'sh'], '--init: the reaper runs the command');
  t.same(init.mounts!.at(-1), { destination: '/dev/init', type: 'bind', source: '/usr/bin/catatonit', options: ['rbind', 'rprivate', 'ro'] });
  const o = resolve(['-l', 'a=b', '--label', 'c', '--stop-signal', 'quit', '--stop-timeout', '3', '--group-add', 'audio', '--group-add', '5']);
  t.same([o.labels, o.stopSignal, o.stopTimeout, o.groupAdd], [{ a: 'b', c: '' }, 'SIGQUIT', 3, ['audio', '5']]);
  t.same(resolveGroups(['audio', '5'], 'root:x:0:\naudio:x:29:\n'), [29, 5]);
  t.throws(() => resolveGroups(['video'], 'root:x:0:\n'), /--group-add video: no such group in the image's \/etc\/group/);
  t.same(parseTmpfs('/x:ro,mode=1777'), { destination: '/x', options: ['noexec', 'nosuid', 'nodev', 'ro', 'mode=1777'] });
  t.equal(parseShmSize('1g'), 1024 ** 3);
  t.same(parseUlimit('nproc=10:20'), { type: 'RLIMIT_NPROC', soft: 10, hard: 20 });
});

t.test('--ulimit above the host\'s hard limit without CAP_SYS_RESOURCE: a clear error before anything is made', async (t) => {
  const host = (sysResource: boolean) => ({ hard: (type: string) => (type === 'RLIMIT_NOFILE' ? 20000 : UNLIMITED), sysResource });
  t.throws(() => checkUlimits([parseUlimit('nofile=1024:30000')], host(false)),
    /--ulimit nofile=1024:30000: the hard limit is above this host's \(20000\), and raising it needs CAP_SYS_RESOURCE/);
  t.doesNotThrow(() => checkUlimits([parseUlimit('nofile=1024:20000'), parseUlimit('core=-1')], host(false)));
  t.doesNotThrow(() => checkUlimits([parseUlimit('nofile=1024:30000')], host(true)), 'with the capability the kernel decides');
});

t.test('bad values: one error naming the flag', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--device', 'dev/sda'], /invalid --device "dev\/sda": the host path "dev\/sda" is not absolute/],
    [['--device', '/dev/sda:/dev/x:rwx'], /invalid --device "\/dev\/sda:\/dev\/x:rwx": "rwx" is not a set of r, w and m/],
    [['--device', '/a:/b:r:w'], /invalid --device "\/a:\/b:r:w": empty or too many fields/],
    [['--ulimit', 'nofile'], /invalid --ulimit "nofile": use NAME=SOFT\[:HARD\]/],
    [['--ulimit', 'files=1'], /invalid --ulimit "files=1": unknown limit "files"/],
    [['--ulimit', 'nofile=5:4'], /the soft limit is above the hard limit/],
    [['--ulimit', 'nofile=-2'], /-2 is neither a non-negative integer nor -1/],
    [['--sysctl', 'kernel.panic=1'], /invalid --sysctl kernel.panic=1: sysctl kernel.panic is not namespaced/],
    [['--sysctl', 'net.ipv4.ip_forward'], /invalid --sysctl "net.ipv4.ip_forward": use KEY=VALUE/],
    [['--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1'], /invalid --sysctl net.ipv4.ip_forward=1: sysctl net.ipv4.ip_forward belongs to the network namespace/],
    [['--tmpfs', 'run'], /invalid --tmpfs "run": the container path "run" is not absolute/],
    [['--tmpfs', '/run:size=lots'], /invalid --tmpfs "\/run:size=lots": option "size=lots"/],
    [['--shm-size', '-1'], /invalid --shm-size "-1"/],
    [['--shm-size', '0'], /invalid --shm-size "0"/],
    [['--stop-signal', 'SIGNOPE'], /invalid --stop-signal "SIGNOPE"/],
    [['--stop-timeout', '1.5'], /invalid --stop-timeout "1.5"/],
    [['--group-add', 'a b'], /invalid --group-add "a b"/],
    [['--label', '=x'], /invalid --label "=x"/],
    [['--tmpfs', '/x', '--tmpfs', '/x/'], /duplicate mount point: \/x is given twice/],
    [['-v', '/a:/x', '--tmpfs', '/x'], /duplicate mount point: \/x is given twice/],
  ];
  for (const [argv, want] of cases) t.throws(() => resolve(argv), want, argv.join(' '));
});

t.test('docker run\'s flags poc lacks are named as such; a typo stays an unknown flag', async (t) => {
  t.throws(() => cli(['--oom-kill-disable', 'img']), /run: --oom-kill-disable is a docker run flag that poc does not support/);
  t.throws(() => cli(['--blkio-weight', '10', 'img']), /run: --blkio-weight is a docker run flag that poc does not support/);
  t.throws(() => cli(['-P', 'img']), /run: -P is a docker run flag that poc does not support/);
  t.throws(() => cli(['--frobnicate', 'img']), /run: unknown flag --frobnicate/);
  for (const known of [['--privileged'], ['--init'], ['--device', '/dev/null'], ['--tmpfs', '/x'], ['-l', 'a=b']]) t.doesNotThrow(() => cli([...known, 'img']), known[0]);
});

t.test('poc stop: the stop signal, then SIGKILL after stop -t, else --stop-timeout, else 10 s', async (t) => {
  t.same(stopPlan({}), { signal: 15, waitMs: 10_000 }, 'SIGTERM, 10 s');
  t.same(stopPlan({ stopSignal: 'SIGUSR1', stopTimeout: 1 }), { signal: 10, waitMs: 1000 }, '--stop-signal, --stop-timeout');
  t.same(stopPlan({ stopTimeout: 1 }, 3), { signal: 15, waitMs: 3000 }, 'stop -t wins');
  t.same(stopPlan({ stopTimeout: 0 }), { signal: 15, waitMs: 0 }, '0: SIGKILL at once');
  t.equal(stopPlan({ stopTimeout: -1 }).waitMs, Number.MAX_SAFE_INTEGER, '-1: for ever');
  t.same(resolve(['--stop-signal', '9']).stopSignal, '9', 'a number is kept');
});
