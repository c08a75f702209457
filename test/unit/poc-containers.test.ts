/**
 * poc's container planning without root: command-line flags → checked options → config.json (planBundle), users,
 * capabilities, the log format, the monitor's and pocrun exec's argv, and the output formats.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { joinNegativeValues, RUN_FLAGS, runFlags } from '../../src/cli/poc.js';
import { parseFlags, splitAtFirstArg, type FlagSpec } from '../../src/cli/args.js';
import type { Spec } from '../../src/spec/generated/config.js';
import { capabilitySet, containerArgs, DEFAULT_CAPABILITIES, planBundle, resolveUser, type BundleContext } from '../../src/poc/containers/bundle.js';
import { flushPending, formatLine, parseLog, splitComplete } from '../../src/poc/containers/logs.js';
import { monitorArgs } from '../../src/poc/containers/monitor.js';
import { checkStdinTerminal } from '../../src/poc/containers/stdin-terminal.js';
import { checkpointDir, networkCriuFlags } from '../../src/poc/containers/checkpoint.js';
import {
  mergeEnv,
  parseCpus,
  parseEnvFile,
  parseMemory,
  parsePidsLimit,
  parseVolume,
  resolveRunFlags,
  type ContainerOptions,
  type RunFlags,
} from '../../src/poc/containers/options.js';
import { overlayOptions } from '../../src/poc/containers/rootfs.js';
import { cgroupsPathOf } from '../../src/poc/containers/cgroup.js';
import type { ContainerRecord } from '../../src/poc/containers/container-store.js';
import { execArgs } from '../../src/poc/commands/exec.js';
import { idFilesIn, readTextInRoot, readWalked, resolveInRoot } from '../../src/poc/root-path.js';
import { binarySize, humanDuration, humanSize, table } from '../../src/poc/commands/format.js';
import { statusText } from '../../src/poc/commands/ps.js';
import { parseNetDev } from '../../src/poc/commands/stats.js';
import { cpuTime } from '../../src/poc/commands/top.js';
import { defaultImageConfig } from '../../src/poc/images/image-store.js';

/** poc's own run flags, with what its command parser adds to every command. */
const RUN_SPEC: FlagSpec = {
  ...RUN_FLAGS,
  string: [...RUN_FLAGS.string!, '_'],
  boolean: [...RUN_FLAGS.boolean!, 'help'],
  repeat: [...RUN_FLAGS.repeat!, '_'],
};

/** What `poc run ARGV` parses to, as the CLI does it. */
function cli(argv: string[]): RunFlags {
  const [flags, positional] = splitAtFirstArg(joinNegativeValues(argv, RUN_SPEC), RUN_SPEC);
  const p = parseFlags(flags, RUN_SPEC, 'run');
  p.args = [...p.args, ...positional];
  return runFlags(p);
}

const noFiles = { readFile: (p: string): string => { throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' }); }, hostEnv: { HOME: '/root' }, cpuCount: 4, systemdRunning: false };
const resolve = (argv: string[], ctx = noFiles) => resolveRunFlags(cli(argv), ctx);

t.test('command line → flags: grouped short flags, repeats, and the command kept as given', async (t) => {
  const f = cli(['-dit', '--rm', '--name', 'web', '-e', 'A=1', '-e', 'B=2', '-p', '8080:80', '-v', '/a:/b:ro', '-m', '512m', 'busybox', 'sh', '-c', 'echo -e --rm 0123']);
  t.same(
    { detach: f.detach, interactive: f.interactive, tty: f.tty, rm: f.rm, name: f.name, env: f.env, publish: f.publish, volumes: f.volumes, memory: f.memory },
    { detach: true, interactive: true, tty: true, rm: true, name: 'web', env: ['A=1', 'B=2'], publish: ['8080:80'], volumes: ['/a:/b:ro'], memory: '512m' },
  );
  t.equal(f.image, 'busybox');
  t.same(f.command, ['sh', '-c', 'echo -e --rm 0123'], 'flags after the image belong to the command');
  t.same(cli(['busybox', '0123']).command, ['0123'], 'numeric arguments stay strings');
  t.equal(cli(['--entrypoint', '', 'img']).entrypoint, '', 'an empty entrypoint is kept');
  t.equal(cli(['--cpus', '-1', 'img']).cpus, '-1', 'a negative value is a value, not a flag');
  t.throws(() => cli(['--bogus', 'img']), { message: /run: unknown flag --bogus/ });
  t.throws(() => cli(['--name', 'a', '--name', 'b', 'img']), { message: /--name given more than once/ });
});

t.test('flags → options: each bad value is one clear error', async (t) => {
  const bad: Array<[string[], RegExp]> = [
    [['-m', '12qb', 'img'], /invalid memory size "12qb" for -m/],
    [['-m', '1k', 'img'], /too small: at least 6m/],
    [['--cpus', '-1', 'img'], /invalid --cpus "-1"/],
    [['--cpus', '0', 'img'], /at least 0\.01/],
    [['--cpus', '8', 'img'], /this machine has 4 CPUs/],
    [['--pids-limit', '0', 'img'], /invalid --pids-limit "0"/],
    [['--pids-limit', 'x', 'img'], /invalid --pids-limit/],
    [['-p', '99999:80', 'img'], /host port 99999 is out of range/],
    [['-p', '80-81:90', 'img'], /the host range 80-81 has 2 port\(s\) and the container range 90 1/],
    [['-p', '80:80/sctp', 'img'], /protocol "sctp" is not tcp or udp/],
    [['-p', '80:80', '--network', 'none', 'img'], /-p needs --network bridge/],
    [['-v', 'r:/x', 'img'], /invalid volume name "r"/],
    [['-v', '/x:rel', 'img'], /container path "rel" is not absolute/],
    [['-v', '/x:/y:rx', 'img'], /option "rx" is not one of ro, rw/],
    [['-v', '/x:/y:ro:z', 'img'], /use HOST_PATH:CONTAINER_PATH/],
    [['-v', '/x:/../etc', 'img'], /may not contain "\.\."/],
    [['--env-file', '/nope', 'img'], /cannot read --env-file \/nope: No such file or directory/],
    [['--network', 'app', '--network', 'host', 'img'], /--network host cannot be combined with other networks \(given app, host\)/],
    [['--network', 'default', '--network', 'x', 'img'], /invalid --network "default"/],
    [['--network-alias', 'db', 'img'], /--network-alias needs a user network/],
    [['--network', 'app', '--network-alias', 'b@d', 'img'], /invalid --network-alias "b@d"/],
    [['--ip', '10.89.0.9', 'img'], /--ip needs a user network/],
    [['--network', 'app', '--ip', '10.1.2', 'img'], /invalid --ip "10\.1\.2": not an IPv4 address/],
    [['--dns', '8.8.8', 'img'], /invalid --dns "8\.8\.8": not an IP address/],
    [['--network', 'none', '--dns', '192.0.2.1', 'img'], /--dns needs a network/],
    [['--add-host', 'db', 'img'], /invalid --add-host "db": use NAME:IP/],
    [['--add-host', 'db:300.1.1.1', 'img'], /"300\.1\.1\.1" is not an IP address/],
    [['--name', '../x', 'img'], /invalid container name/],
    [['--hostname', 'bad_host!', 'img'], /invalid --hostname/],
    [['-w', 'tmp', 'img'], /working directory must be absolute/],
    [['-u', 'a b', 'img'], /invalid -u/],
    [['--cap-add', 'NOPE', 'img'], /invalid --cap-add "NOPE": unknown capability/],
    [['-e', '=x', 'img'], /invalid environment variable/],
  ];
  for (const [argv, message] of bad) t.throws(() => resolve(argv), { name: 'PocError', message }, argv.join(' '));
});

t.test('flags → options: values', async (t) => {
  const o = resolve(['-e', 'HOME', '-e', 'UNSET', '-e', 'A=1', '-v', '/srv//data/:/data:ro', '-p', '127.0.0.1:8080:80/udp', '-m', '1.5g', '--cpus', '1.5', '--pids-limit', '64', '--cap-add', 'net_admin', '--cap-drop', 'CAP_CHOWN', '--read-only', '--rm', 'img', 'echo']);
  t.same(o.env, ['HOME=/root', 'A=1'], '-e NAME takes the host value; unset names are left out');
  t.same(o.volumes, [{ type: 'bind', source: '/srv/data', destination: '/data', readOnly: true }]);
  t.same(o.publish, [{ hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80, protocol: 'udp' }]);
  t.same(o.resources, { memory: 1.5 * 1024 ** 3, cpus: 1.5, pidsLimit: 64 });
  t.same([o.capAdd, o.capDrop], [['CAP_NET_ADMIN'], ['CAP_CHOWN']]);
  t.same([o.readOnly, o.autoRemove, o.network, o.entrypoint, o.command], [true, true, 'bridge', null, ['echo']]);
  t.equal(o.networks, undefined, 'no --network: the default network alone');
  const n = resolve(['--network', 'front', '--network', 'back', '--network', 'front', '--network-alias', 'api', '--ip', '10.90.0.9', '--dns', '192.0.2.53', '--dns', 'fd00::53', '--add-host', 'db:192.0.2.7', '--add-host', 'gw:host-gateway', '--add-host', 'six:fd00::7', 'img']);
  t.same(n.networks, [{ network: 'front', aliases: ['api'], ip: '10.90.0.9' }, { network: 'back', aliases: ['api'] }], 'networks in order, once each; --ip on the first');
  t.same(n.dns, ['192.0.2.53', 'fd00::53']);
  t.same(n.extraHosts, [{ ip: '192.0.2.7', names: ['db'] }, { ip: 'host-gateway', names: ['gw'] }, { ip: 'fd00::7', names: ['six'] }]);
  t.equal(resolve(['--network', 'bridge', 'img']).networks, undefined, '--network bridge is the default network');
  t.same(resolve(['--network', 'bridge', '--network', 'app', 'img']).networks, [{ network: 'bridge' }, { network: 'app' }]);
  const files = { ...noFiles, readFile: () => '# comment\n\nA=file\nB=file\r\nHOME\n' };
  t.same(resolve(['--env-file', 'f', '-e', 'A=flag', 'img'], files).env, ['A=flag', 'B=file', 'HOME=/root'], '-e overrides the env file');
});

t.test('sizes and limits', async (t) => {
  const sizes: Array<[string, number]> = [['512m', 512 * 1024 ** 2], ['1g', 1024 ** 3], ['64MB', 64 * 1024 ** 2], ['7000000', 7000000], ['8192k', 8 * 1024 ** 2], ['2G', 2 * 1024 ** 3]];
  for (const [text, bytes] of sizes) t.equal(parseMemory(text), bytes, text);
  t.equal(parseCpus('0.5', 1), 0.5);
  t.equal(parseCpus('.25', 1), 0.25);
  t.equal(parsePidsLimit('100'), 100);
  t.same(parseVolume('/a:/b'), { type: 'bind', source: '/a', destination: '/b', readOnly: false });
  t.same(mergeEnv(['PATH=/bin', 'A=1'], ['A=2', 'B=3']), ['PATH=/bin', 'A=2', 'B=3']);
  t.same(parseEnvFile('X=1\n#y\n  Z=2\n', 'f', {}), ['X=1', 'Z=2']);
});

t.test('users from the image', async (t) => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1001:u:/home/user:/bin/sh\n';
  const group = 'root:x:0:\nstaff:x:50:\nuser:x:1001:\n';
  const cases: Array<[string, { uid: number; gid: number }]> = [
    ['', { uid: 0, gid: 0 }],
    ['user', { uid: 1000, gid: 1001 }],
    ['1000', { uid: 1000, gid: 1001 }],
    ['4242', { uid: 4242, gid: 0 }],
    ['user:staff', { uid: 1000, gid: 50 }],
    ['4242:7', { uid: 4242, gid: 7 }],
  ];
  for (const [spec, want] of cases) t.same(resolveUser(spec, passwd, group), want, JSON.stringify(spec));
  t.throws(() => resolveUser('nobody', passwd, group), { message: 'unable to find user nobody: no matching entries in passwd file' });
  t.throws(() => resolveUser('user:wheel', passwd, group), { message: 'unable to find group wheel: no matching entries in group file' });
});

t.test('paths inside an image: symbolic links stay inside', async (t) => {
  const root = mkdtempSync('/tmp/poc-root-path-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'real'));
  symlinkSync('/real', join(root, 'abs'));
  symlinkSync('../../../..', join(root, 'up'));
  mkdirSync(join(root, 'etc'));
  symlinkSync('/etc', join(root, 'hostetc'));
  symlinkSync('loop', join(root, 'loop'));
  t.equal(resolveInRoot(root, '/abs/x'), join(root, 'real/x'));
  t.equal(resolveInRoot(root, '/up/x'), join(root, 'x'), '.. stops at the root');
  t.equal(resolveInRoot(root, '/hostetc/passwd'), join(root, 'etc/passwd'), "an absolute link is the image's, not the host's");
  t.equal(resolveInRoot(root, '/missing/../../../../etc/passwd'), join(root, 'etc/passwd'), '.. after a missing component stops at the root too');
  symlinkSync('missing/../../../../../../etc', join(root, 'through-missing'));
  t.equal(resolveInRoot(root, '/through-missing/passwd'), join(root, 'etc/passwd'), "a link through a missing directory stays inside");
  t.throws(() => resolveInRoot(root, '/loop/x'), /too many levels of symbolic links/);
});

t.test("--user NAME: an image's /etc/passwd or /etc/group that links out reads the image's file, never the host's", async (t) => {
  // The host file: a user no image has, at a path outside every root below.
  const host = mkdtempSync('/tmp/poc-host-etc-');
  t.teardown(() => rmSync(host, { recursive: true, force: true }));
  writeFileSync(join(host, 'passwd'), 'hostonly:x:4242:4343::/home/hostonly:/bin/sh\n');
  writeFileSync(join(host, 'group'), 'hostgroup:x:4343:\n');
  const up = '../'.repeat(20);
  const image = (name: string, make: (root: string) => void) => {
    const root = mkdtempSync(`/tmp/poc-image-${name}-`);
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    mkdirSync(join(root, 'etc'));
    make(root);
    return root;
  };
  const roots = {
    'absolute links': image('abs', (r) => {
      symlinkSync(join(host, 'passwd'), join(r, 'etc/passwd'));
      symlinkSync(join(host, 'group'), join(r, 'etc/group'));
    }),
    'relative .. links': image('rel', (r) => {
      symlinkSync(`..${join('/', up, host, 'passwd')}`, join(r, 'etc/passwd'));
      symlinkSync(`${up}${host.slice(1)}/group`, join(r, 'etc/group'));
    }),
    '/etc a link to the host directory': image('dir', (r) => {
      rmSync(join(r, 'etc'), { recursive: true });
      symlinkSync(`${up}${host.slice(1)}`, join(r, 'etc'));
    }),
  };
  for (const [what, root] of Object.entries(roots)) {
    t.same(idFilesIn(root), { passwd: '', group: '' }, `${what}: nothing of the host's is read`);
    const { passwd, group } = idFilesIn(root);
    t.throws(() => resolveUser('hostonly', passwd, group), { message: 'unable to find user hostonly: no matching entries in passwd file' }, what);
    t.throws(() => resolveUser('0:hostgroup', passwd, group), { message: 'unable to find group hostgroup: no matching entries in group file' }, what);
  }
  // The same links land on the image's own copy when it has one there.
  const own = image('own', (r) => {
    mkdirSync(join(r, host), { recursive: true });
    writeFileSync(join(r, host, 'passwd'), 'imageuser:x:1234:1234::/:/bin/sh\n');
    symlinkSync(`..${join('/', up, host, 'passwd')}`, join(r, 'etc/passwd'));
  });
  t.same(resolveUser('imageuser', idFilesIn(own).passwd, ''), { uid: 1234, gid: 1234 }, "a relative link's target in the image is read");
  // Anything but a regular file reads as absent (a FIFO would block the read, /dev/zero never end it).
  const fifo = image('fifo', (r) => execFileSync('mkfifo', [join(r, 'etc/passwd')]));
  t.equal(readTextInRoot(fifo, '/etc/passwd'), '', 'a FIFO is not read');
  // A running container can swap a directory for a link between the walk and the open (CVE-2018-15664): here
  // the walk's answer, root/etc/passwd, after /etc became a link to the host's directory.
  const swapped = image('swapped', (r) => {
    rmSync(join(r, 'etc'), { recursive: true });
    symlinkSync(host, join(r, 'etc'));
  });
  t.throws(() => readWalked(swapped, join(swapped, 'etc/passwd'), '/etc/passwd'),
    { name: 'PocError', message: `/etc/passwd: it was changed into a link out of the root ${swapped} while it was being read` }, 'a swap after the walk is caught');
  t.equal(readWalked(own, join(own, host, 'passwd'), '/etc/passwd'), 'imageuser:x:1234:1234::/:/bin/sh\n', 'a file inside is read');
  // A root named through a link of the host's (POC_ROOT on a linked directory) is still itself.
  const linkedRoot = `${own}-link`;
  symlinkSync(own, linkedRoot);
  t.teardown(() => rmSync(linkedRoot, { force: true }));
  t.same(resolveUser('imageuser', idFilesIn(linkedRoot).passwd, ''), { uid: 1234, gid: 1234 }, 'a root reached through a link');
});

t.test('capabilities: docker defaults, --cap-add, --cap-drop, ALL', async (t) => {
  t.same(capabilitySet([], []).sort(), [...DEFAULT_CAPABILITIES].sort());
  t.ok(capabilitySet(['CAP_NET_ADMIN'], []).includes('CAP_NET_ADMIN'));
  t.notOk(capabilitySet([], ['CAP_NET_RAW']).includes('CAP_NET_RAW'));
  t.same(capabilitySet(['CAP_KILL'], ['ALL']), ['CAP_KILL']);
  t.ok(capabilitySet(['ALL'], []).includes('CAP_SYS_ADMIN'));
  t.notOk(capabilitySet(['ALL'], ['CAP_SYS_ADMIN']).includes('CAP_SYS_ADMIN'));
});

t.test('the command: ENTRYPOINT, CMD and their overrides, as docker combines them', async (t) => {
  const cases: Array<[string, { Entrypoint: string[] | null; Cmd: string[] | null }, { entrypoint: string[] | null; command: string[] }, string[]]> = [
    ['image CMD', { Entrypoint: null, Cmd: ['sh'] }, { entrypoint: null, command: [] }, ['sh']],
    ['CMD replaced', { Entrypoint: null, Cmd: ['sh'] }, { entrypoint: null, command: ['echo', 'hi'] }, ['echo', 'hi']],
    ['ENTRYPOINT + CMD', { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo x'] }, { entrypoint: null, command: [] }, ['/bin/sh', '-c', 'echo x']],
    ['ENTRYPOINT + args', { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo x'] }, { entrypoint: null, command: ['date'] }, ['/bin/sh', '-c', 'date']],
    ['--entrypoint drops CMD', { Entrypoint: null, Cmd: ['sh'] }, { entrypoint: ['env'], command: [] }, ['env']],
    ['--entrypoint "" + args', { Entrypoint: ['/x'], Cmd: ['y'] }, { entrypoint: [], command: ['ls'] }, ['ls']],
  ];
  for (const [name, image, opts, want] of cases) t.same(containerArgs(image, opts), want, name);
  t.throws(() => containerArgs({ Entrypoint: null, Cmd: null }, { entrypoint: null, command: [] }), { message: /no command given/ });
});

const CTX: BundleContext = {
  containerId: 'c'.repeat(64),
  name: 'web',
  hostname: 'cccccccccccc',
  rootfs: '/var/lib/poc/containers/c/rootfs',
  etcDir: '/var/lib/poc/containers/c/etc',
  user: { uid: 0, gid: 0 },
  hook: { path: '/usr/local/bin/poc', env: ['POC_ROOT=/var/lib/poc'] },
  arch: 'amd64',
  kernel: '6.1.0-13-amd64',
  volumePath: (name) => `/var/lib/poc/volumes/${name}/_data`,
};

function bundle(argv: string[], image = defaultImageConfig({ Env: ['PATH=/bin', 'LANG=C'], Cmd: ['sh'], WorkingDir: '/srv' })): Spec {
  return planBundle(image, resolve([...argv, 'img']) as ContainerOptions, CTX);
}

t.test('planBundle: image + options → config.json', async (t) => {
  const cases: Array<[string, string[], (s: Spec) => unknown, unknown]> = [
    ['the image command, cwd and env', [], (s) => [s.process!.args, s.process!.cwd, s.process!.env], [['sh'], '/srv', ['PATH=/bin', 'LANG=C', `HOSTNAME=${CTX.hostname}`]]],
    ['-e over the image env, TERM with -t', ['-t', '-e', 'LANG=de'], (s) => s.process!.env, ['PATH=/bin', 'LANG=de', `HOSTNAME=${CTX.hostname}`, 'TERM=xterm']],
    ['-w', ['-w', '/tmp'], (s) => s.process!.cwd, '/tmp'],
    ['terminal', ['-t'], (s) => s.process!.terminal, true],
    ['no terminal', [], (s) => s.process!.terminal, false],
    ['rootfs and --read-only', ['--read-only'], (s) => s.root, { path: CTX.rootfs, readonly: true }],
    ['writable rootfs', [], (s) => s.root!.readonly, false],
    ['hostname', [], (s) => s.hostname, CTX.hostname],
    ['cgroup', [], (s) => s.linux!.cgroupsPath, `/poc/${CTX.containerId}`],
    ['memory', ['-m', '64m'], (s) => s.linux!.resources!.memory, { limit: 64 * 1024 * 1024 }],
    ['cpus', ['--cpus', '1.5'], (s) => s.linux!.resources!.cpu, { quota: 150000, period: 100000 }],
    ['pids', ['--pids-limit', '10'], (s) => s.linux!.resources!.pids, { limit: 10 }],
    ['no limits by default', [], (s) => [s.linux!.resources!.memory, s.linux!.resources!.cpu, s.linux!.resources!.pids], [undefined, undefined, undefined]],
    ['devices denied by default', [], (s) => s.linux!.resources!.devices, [{ allow: false, access: 'rwm' }]],
    ['bridge: a network namespace', [], (s) => s.linux!.namespaces!.some((n) => n.type === 'network'), true],
    ['host: no network namespace', ['--network', 'host'], (s) => s.linux!.namespaces!.some((n) => n.type === 'network'), false],
    ['none: a network namespace', ['--network', 'none'], (s) => s.linux!.namespaces!.some((n) => n.type === 'network'), true],
    [
      'bridge: setup and teardown hooks call poc',
      [],
      (s) => s.hooks,
      {
        createRuntime: [{ path: '/usr/local/bin/poc', args: ['poc', 'hook', 'network', 'setup'], env: ['POC_ROOT=/var/lib/poc'], timeout: 60 }],
        poststop: [{ path: '/usr/local/bin/poc', args: ['poc', 'hook', 'network', 'teardown'], env: ['POC_ROOT=/var/lib/poc'], timeout: 60 }],
      },
    ],
    ['none: no hook (pocrun brings lo up itself)', ['--network', 'none'], (s) => s.hooks, undefined],
    ['host: no hooks', ['--network', 'host'], (s) => s.hooks, undefined],
    [
      '/etc files and volumes are bind mounts',
      ['-v', '/data:/data:ro', '-v', '/logs:/var/log'],
      (s) => s.mounts!.filter((m) => m.type === 'bind').map((m) => [m.source, m.destination, m.options]),
      [
        [`${CTX.etcDir}/hosts`, '/etc/hosts', ['rbind', 'rprivate', 'rw']],
        [`${CTX.etcDir}/hostname`, '/etc/hostname', ['rbind', 'rprivate', 'rw']],
        [`${CTX.etcDir}/resolv.conf`, '/etc/resolv.conf', ['rbind', 'rprivate', 'rw']],
        ['/data', '/data', ['rbind', 'rprivate', 'ro']],
        ['/logs', '/var/log', ['rbind', 'rprivate', 'rw']],
      ],
    ],
    ['annotations name the container', [], (s) => s.annotations, { 'io.poc.container.id': CTX.containerId, 'io.poc.container.name': 'web' }],
    ['capabilities: defaults, not ambient', [], (s) => [s.process!.capabilities!.bounding!.length, s.process!.capabilities!.ambient], [DEFAULT_CAPABILITIES.length, undefined]],
    ['--cap-add', ['--cap-add', 'SYS_ADMIN'], (s) => s.process!.capabilities!.effective!.includes('CAP_SYS_ADMIN'), true],
    ['the default seccomp profile unless told otherwise', [], (s) => [s.linux!.seccomp!.defaultAction, s.linux!.seccomp!.defaultErrnoRet], ['SCMP_ACT_ERRNO', 1]],
    ['--security-opt seccomp=unconfined: none', ['--security-opt', 'seccomp=unconfined'], (s) => s.linux!.seccomp, undefined],
    ['no-new-privileges: off by default', [], (s) => s.process!.noNewPrivileges, false],
    ['--security-opt no-new-privileges', ['--security-opt', 'no-new-privileges'], (s) => s.process!.noNewPrivileges, true],
  ];
  for (const [name, argv, pick, want] of cases) t.same(pick(bundle(argv)), want, name);
  t.equal(planBundle(defaultImageConfig(), resolve(['img']), { ...CTX, user: { uid: 1000, gid: 1000 } }).process!.user!.uid, 1000, 'the user');
  t.same(planBundle(defaultImageConfig({ Env: [] }), resolve(['img']), CTX).process!.env![0], 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'a PATH even if the image has none');
});

t.test('the log: CRI lines, partial lines joined per stream', async (t) => {
  const text = [
    '2026-01-01T00:00:00.000000001Z stdout F hello',
    '2026-01-01T00:00:00.000000002Z stderr P err',
    '2026-01-01T00:00:00.000000003Z stdout F  two  spaces ',
    '2026-01-01T00:00:00.000000004Z stderr F or',
    'torn',
    '2026-01-01T00:00:00.000000005Z stdout P no newline',
    '',
  ].join('\n');
  const { lines, pending } = parseLog(text);
  t.same(lines.map((l) => [l.stream, l.text]), [['stdout', 'hello'], ['stdout', ' two  spaces '], ['stderr', 'error']]);
  t.equal(lines[2]!.time, '2026-01-01T00:00:00.000000002Z', 'a joined line has the time of its first piece');
  t.same(flushPending(pending).map((l) => [l.text, l.complete]), [['no newline', false]]);
  const more = parseLog('2026-01-01T00:00:01Z stdout F , continued\n', pending);
  t.same(more.lines.map((l) => l.text), ['no newline, continued']);
  t.equal(formatLine(lines[0]!, true), '2026-01-01T00:00:00.000000001Z hello\n');
  t.equal(formatLine({ ...lines[0]!, complete: false }, false), 'hello');
  t.same(splitComplete('a\nb\nc'), ['a\nb\n', 'c']);
});

const record: ContainerRecord = {
  id: 'a'.repeat(64),
  name: 'web',
  created: '2026-01-01T00:00:00Z',
  image: { id: 'b'.repeat(64), name: 'busybox' },
  hostname: 'aaaaaaaaaaaa',
  args: ['sh'],
  user: { uid: 0, gid: 0 },
  options: resolve(['img']),
};

t.test("the monitor's argv", async (t) => {
  const base = { pocrun: '/bin/pocrun', poc: '/bin/poc', runtimeRoot: '/r/runtime', overlay: 'lowerdir=/l,upperdir=/u,workdir=/w' };
  const dir = `/r/containers/${record.id}`;
  t.same(monitorArgs(record, { ...base, foreground: false }, { root: '/r' }), [
    '--runtime', '/bin/pocrun', '--root', '/r/runtime', '--id', record.id, '--bundle', dir, '--log', `${dir}/container.log`,
    '--exit-file', `${dir}/exit.json`, '--pid-file', `${dir}/init.pid`, '--sync-fd', '3',
    '--rootfs', `${dir}/rootfs`, '--overlay', 'lowerdir=/l,upperdir=/u,workdir=/w',
    '--state-file', `${dir}/state.json`, '--stop-file', `${dir}/stopped`, '--', '/bin/poc', 'cleanup', record.id,
  ]);
  const policed = monitorArgs({ ...record, options: { ...record.options, restart: { Name: 'on-failure', MaximumRetryCount: 2 } }, healthcheck: { Test: ['CMD', 'true'], Interval: 2e9 } }, { ...base, foreground: false }, { root: '/r' });
  t.same(policed.slice(policed.indexOf(`${dir}/stopped`) + 1, policed.indexOf('--')), [
    '--restart', 'on-failure', '--restart-max', '2', '--health-file', `${dir}/health.json`, '--health-interval', '2000', '--health-timeout', '30000',
    '--health-start-period', '0', '--health-retries', '3', '--health-arg', 'true',
  ], 'the restart policy and the health check');
  const it = { ...record, options: { ...record.options, tty: true, interactive: true } };
  const args = monitorArgs(it, { ...base, foreground: true, consoleSocket: '/r/sock/x.sock' }, { root: '/r' });
  t.same(args.slice(args.indexOf('--overlay') + 2, args.indexOf('--state-file')), ['--tty', '--console-socket', '/r/sock/x.sock', '--stdin', '--foreground']);
  const detachedIt = monitorArgs(it, { ...base, foreground: false, consoleSocket: '/s' }, { root: '/r' });
  t.notOk(detachedIt.includes('--stdin'), 'a detached container has no stdin to relay');
  const restored = monitorArgs(record, { ...base, foreground: false, restore: { dir: '/cp/one', flags: ['--file-locks', '--empty-ns', 'network'] } }, { root: '/r' });
  t.same(restored.slice(restored.indexOf('--restore'), restored.indexOf('--restore') + 8), [
    '--restore', '/cp/one', '--restore-flag', '--file-locks', '--restore-flag', '--empty-ns', '--restore-flag', 'network',
  ], 'start --checkpoint: pocrun restore, with its flags');
});

t.test('checkpoints: names, places, and the flags by network', async (t) => {
  const opts = { root: '/nonexistent-poc-root' };
  t.equal(checkpointDir(record, 'one', opts, false), `/nonexistent-poc-root/containers/${record.id}/checkpoints/one`);
  for (const bad of ['', '.hidden', 'a/b', '..', 'x'.repeat(129)]) t.throws(() => checkpointDir(record, bad, opts, false), /invalid checkpoint name/, JSON.stringify(bad));
  t.throws(() => checkpointDir(record, 'one', opts, true), /container web has no checkpoint "one"/);
  t.same(networkCriuFlags(record), ['--empty-ns', 'network'], 'bridge: the namespace is wired again by the hook');
  t.same(networkCriuFlags({ ...record, options: { ...record.options, network: 'none' } }), ['--tcp-established']);
});

t.test("pocrun exec's argv", async (t) => {
  const base = { ref: 'web', command: ['sh', '-c', 'echo --x'], detach: false, interactive: false, tty: false, env: [] as string[], id: 'c1' };
  t.same(execArgs(base), ['exec', 'c1', '--', 'sh', '-c', 'echo --x']);
  t.same(execArgs({ ...base, detach: true, env: ['A=1'], workdir: '/tmp', uidGid: '1000:1000' }), ['exec', '--detach', '--cwd', '/tmp', '--env', 'A=1', '--user', '1000:1000', 'c1', '--', 'sh', '-c', 'echo --x']);
  t.same(execArgs({ ...base, tty: true, consoleSocket: '/s.sock' }).slice(0, 4), ['exec', '--tty', '--console-socket', '/s.sock']);
});

t.test('output formats', async (t) => {
  t.equal(table(['A', 'LONGER'], [['xyz', '1'], ['', '2']]), 'A     LONGER\nxyz   1\n      2\n');
  const durations: Array<[number, string]> = [[0, 'Less than a second'], [1000, '1 second'], [42_000, '42 seconds'], [61_000, 'About a minute'], [600_000, '10 minutes'], [3_600_000, 'About an hour'], [7_200_000, '2 hours'], [86_400_000 * 3, '3 days']];
  for (const [ms, text] of durations) t.equal(humanDuration(ms), text, text);
  t.equal(humanSize(999), '999B');
  t.equal(humanSize(4_200_000), '4.20MB');
  t.equal(humanSize(42_000_000), '42MB');
  t.equal(humanSize(2e15), '2000TB', 'the largest unit holds the rest');
  t.equal(binarySize(1023), '1023B');
  t.equal(binarySize(1536 * 1024), '1.50MiB');
  t.equal(statusText({ status: 'created', monitorAlive: false }), 'Created');
  const now = Date.parse('2026-01-01T00:01:00Z');
  const run = { startedAt: '2026-01-01T00:00:00Z', pid: 1, initStartTime: '1', monitorPid: 2, monitorStartTime: '2' };
  t.equal(statusText({ status: 'running', monitorAlive: true, run }, now), 'Up About a minute');
  t.equal(statusText({ status: 'exited', monitorAlive: false, run, exit: { exitCode: 3, finishedAt: '2026-01-01T00:00:30Z' } }, now), 'Exited (3) 30 seconds ago');
  t.equal(statusText({ status: 'exited', monitorAlive: false, run, exitUnknown: true }, now), 'Exited (unknown)');
  const health = (Status: 'starting' | 'healthy' | 'unhealthy') => ({ Status, FailingStreak: 0, Log: [] });
  t.equal(statusText({ status: 'running', monitorAlive: true, run }, now, health('starting')), 'Up About a minute (health: starting)');
  t.equal(statusText({ status: 'running', monitorAlive: true, run }, now, health('healthy')), 'Up About a minute (healthy)');
  t.equal(statusText({ status: 'restarting', monitorAlive: true, run, exit: { exitCode: 1, finishedAt: '2026-01-01T00:00:58Z' } }, now), 'Restarting (1) 2 seconds ago');
  t.same(parseNetDev('Inter-|...\n face |...\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 806 9 0 0 0 0 0 0 516 6 0 0 0 0 0 0\n'), { rx: 806, tx: 516 });
  t.equal(cpuTime(100 * 3725), '01:02:05');
  t.equal(cpuTime(100 * 90000), '1-01:00:00');
});

t.test('overlay options refuse paths overlayfs would misread', async (t) => {
  t.equal(overlayOptions('/l', '/u', '/w'), 'lowerdir=/l,upperdir=/u,workdir=/w');
  t.throws(() => overlayOptions('/a:b', '/u', '/w'), { message: /contains one of , : \\/ });
});

t.test('--security-opt: no-new-privileges forms, seccomp=FILE in Docker\'s format, and what is refused', async (t) => {
  const profile = JSON.stringify({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW', comment: 'always' },
      { names: ['ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
      { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
      { names: ['sync_file_range2'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['ppc64le'] } },
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2114060288, op: 'SCMP_CMP_MASKED_EQ' }], excludes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    ],
  });
  const files = { ...noFiles, readFile: (p: string) => (p === 'docker.json' ? profile : noFiles.readFile(p)) };
  const seccomp = (argv: string[], ctx: Partial<BundleContext> = {}) =>
    planBundle(defaultImageConfig({ Cmd: ['sh'] }), resolve([...argv, 'img'], files) as ContainerOptions, { ...CTX, ...ctx }).linux!.seccomp;
  const names = (s: ReturnType<typeof seccomp>) => s!.syscalls!.flatMap((r) => r.names);
  const plain = seccomp(['--security-opt', 'seccomp=docker.json']);
  t.same(plain!.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], 'the native architecture and its sub-architectures');
  t.same(names(plain), ['read', 'write', 'ptrace', 'arch_prctl', 'clone', 'clone3'], 'rules for this machine and these capabilities');
  t.same([plain!.defaultAction, plain!.defaultErrnoRet], ['SCMP_ACT_ERRNO', 1]);
  t.notOk(JSON.stringify(plain).includes('comment') || JSON.stringify(plain).includes('includes'), "Docker's own fields are resolved away");
  t.same(names(seccomp(['--cap-add', 'SYS_ADMIN', '--security-opt', 'seccomp=docker.json'])), ['read', 'write', 'ptrace', 'mount', 'arch_prctl'],
    'with CAP_SYS_ADMIN: mount included, the clone limits excluded');
  t.notOk(names(seccomp(['--security-opt', 'seccomp=docker.json'], { kernel: '4.4.0-210-generic' })).includes('ptrace'), 'minKernel');
  t.same(seccomp(['--security-opt', 'seccomp=docker.json'], { arch: 'arm64' })!.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  const oci = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] };
  const ociFiles = { ...noFiles, readFile: () => JSON.stringify(oci) };
  t.same(planBundle(defaultImageConfig({ Cmd: ['sh'] }), resolve(['--security-opt', 'seccomp=oci.json', 'img'], ociFiles) as ContainerOptions, CTX).linux!.seccomp, oci,
    'an OCI linux.seccomp passes as it is');
  for (const [opt, want] of [['no-new-privileges=true', true], ['no-new-privileges:true', true], ['no-new-privileges=false', false]] as const) {
    t.equal(resolve(['--security-opt', opt, 'img']).noNewPrivileges, want, opt);
  }
  const bad: Array<[string[], object, RegExp]> = [
    [['--security-opt', 'apparmor=unconfined'], noFiles, /unsupported --security-opt "apparmor=unconfined": poc takes no-new-privileges, seccomp=unconfined and seccomp=FILE/],
    [['--security-opt', 'no-new-privileges=maybe'], noFiles, /unsupported --security-opt "no-new-privileges=maybe"/],
    [['--security-opt', 'seccomp=/nope.json'], noFiles, /cannot read --security-opt seccomp=\/nope.json: No such file or directory/],
    [['--security-opt', 'seccomp=bad.json'], { ...noFiles, readFile: () => '{' }, /--security-opt seccomp=bad.json: not JSON/],
    [['--security-opt', 'seccomp=arr.json'], { ...noFiles, readFile: () => '[]' }, /--security-opt seccomp=arr.json: not a seccomp profile \(it needs a defaultAction\)/],
    [['--security-opt', 'seccomp=s.json'], { ...noFiles, readFile: () => '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}}' }, /seccomp=s.json: syscalls must be a list of objects/],
    [['--security-opt', 'seccomp=a.json'], { ...noFiles, readFile: () => '{"defaultAction":"SCMP_ACT_ALLOW","archMap":[1]}' }, /seccomp=a.json: archMap must be a list of objects/],
  ];
  for (const [argv, ctx, re] of bad) t.throws(() => resolve([...argv, 'img'], ctx as typeof noFiles), re, argv.join(' '));
});

t.test('--cgroup-manager and --cgroup-parent: systemd by default where it runs, as podman; checked values', async (t) => {
  const withSystemd = { ...noFiles, systemdRunning: true };
  t.same(resolve(['img']).cgroup, { manager: 'cgroupfs', parent: '/poc' }, 'no systemd: cgroupfs under /poc');
  t.same(resolve(['img'], withSystemd).cgroup, { manager: 'systemd', parent: 'machine.slice' }, 'systemd: machine.slice');
  t.same(resolve(['--cgroup-manager', 'cgroupfs', 'img'], withSystemd).cgroup, { manager: 'cgroupfs', parent: '/poc' });
  t.same(resolve(['--cgroup-parent', '/my//parent/', 'img']).cgroup, { manager: 'cgroupfs', parent: '/my/parent' });
  t.same(resolve(['--cgroup-parent', 'kubepods-besteffort.slice', 'img'], withSystemd).cgroup, { manager: 'systemd', parent: 'kubepods-besteffort.slice' });
  const bad: Array<[string[], RegExp, typeof noFiles?]> = [
    [['--cgroup-manager', 'foo'], /^invalid --cgroup-manager "foo": use systemd or cgroupfs$/],
    [['--cgroup-manager', 'systemd'], /^--cgroup-manager systemd: systemd is not running on this host; use --cgroup-manager cgroupfs$/],
    [['--cgroup-parent', 'poc'], /^invalid --cgroup-parent "poc": with the cgroupfs manager it is an absolute cgroup path/],
    [['--cgroup-parent', '/a/../b'], /^invalid --cgroup-parent "\/a\/..\/b"/],
    [['--cgroup-parent', '/poc'], /^invalid --cgroup-parent "\/poc": with the systemd cgroup manager it is a slice/, withSystemd],
  ];
  for (const [argv, message, ctx] of bad) t.throws(() => resolve([...argv, 'img'], ctx), { name: 'PocError', message }, argv.join(' '));
});

t.test('the cgroup in config.json and where stats and top read it', async (t) => {
  const sd = { manager: 'systemd', parent: 'machine.slice' } as const;
  t.equal(cgroupsPathOf('abc'), '/poc/abc', 'containers made before the flags: /poc');
  t.equal(cgroupsPathOf('abc', sd), 'machine.slice:poc:abc', 'systemd: slice:prefix:name for pocrun --systemd-cgroup');
  const spec = planBundle(defaultImageConfig({ Cmd: ['sh'] }), { ...resolve(['img']), cgroup: sd } as ContainerOptions, CTX);
  t.equal(spec.linux!.cgroupsPath, `machine.slice:poc:${CTX.containerId}`);
  const args = monitorArgs({ ...record, options: { ...record.options, cgroup: sd } }, { pocrun: '/p', poc: '/q', runtimeRoot: '/r', overlay: 'o', foreground: false }, { root: '/r' });
  t.ok(args.slice(0, args.indexOf('--')).includes('--systemd-cgroup'), 'the monitor runs pocrun create --systemd-cgroup');
});

t.test("-i with -t needs a terminal on stdin, as docker's CheckTty: not -t alone, not -i alone, not detached", async (t) => {
  const f = (interactive: boolean, tty: boolean, detach: boolean, terminal: boolean) => () => checkStdinTerminal({ interactive, tty, detach }, terminal);
  t.throws(f(true, true, false, false), { message: /^the input device is not a TTY: / });
  for (const [i, tt, d, term] of [[true, true, false, true], [false, true, false, false], [true, false, false, false], [true, true, true, false]] as const) {
    t.doesNotThrow(f(i, tt, d, term), `-i ${i} -t ${tt} -d ${d} stdin a terminal ${term}`);
  }
});
