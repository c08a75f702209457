import t from 'tap';
import { checkCommonOptions, commandLine, configFile, criuLogErrors, dumpPlan, externalNamespacePaths, hooksScript, restoreArgs, type CriuCommonOptions, type DumpOptions } from '../../src/runtime/checkpoint/plan.js';
import type { Spec } from '../../src/spec/generated/config.js';

const spec: Spec = {
  ociVersion: '1.2.0',
  root: { path: 'rootfs' },
  mounts: [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/etc/hosts', type: 'bind', source: '/run/c1/hosts', options: ['rbind', 'ro'] },
    { destination: '/data', source: '/srv/data', options: ['bind'] },
  ],
  linux: {
    namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'network', path: '/run/netns/n1' }],
    maskedPaths: ['/proc/kcore', '/proc/acpi'],
    devices: [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }],
  },
};

const common: CriuCommonOptions = { tcpEstablished: false, extUnixSk: false, shellJob: false, fileLocks: false, emptyNs: [], autoDedup: false };

/** The value after each occurrence of a flag. */
const values = (args: string[], flag: string) => args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
/** A dump's options as criu's command line spells them. */
const dumpArgs = (s: Spec, o: DumpOptions, masked: string[]) => commandLine(dumpPlan(s, o, masked).options);

t.test('dump: the tree, frozen through its cgroup, with runc\'s external mounts and namespaces', async (t) => {
  const o: DumpOptions = { ...common, pid: 42, leaveRunning: false, preDump: false, freezeCgroup: '/sys/fs/cgroup/pocrun/c1', externalNsInodes: { net: 4026532000 } };
  const plan = dumpPlan(spec, o, ['/proc/kcore']);
  t.same([plan.type, plan.pid, plan.logFile], ['dump', 42, 'dump.log'], 'what the RPC request carries');
  const args = commandLine(plan.options);
  t.same(values(args, '--freeze-cgroup'), ['/sys/fs/cgroup/pocrun/c1']);
  t.ok(args.includes('--manage-cgroups'), 'criu manages the cgroups (runc: ManageCgroups)');
  t.same(values(args, '--ext-mount-map'), ['/etc/hosts:/etc/hosts', '/data:/data', '/proc/kcore:/dev/null', '/dev/fuse:/dev/fuse']);
  t.same(values(args, '--external'), ['net[4026532000]:extRootNetNS']);
  t.notOk(args.includes('--leave-running'));
});

t.test('dump flags: runc\'s names to criu\'s', async (t) => {
  const args = dumpArgs(spec, {
    ...common, tcpEstablished: true, extUnixSk: true, shellJob: true, fileLocks: true, autoDedup: true, emptyNs: ['network'],
    manageCgroupsMode: 'full', pid: 1, leaveRunning: true, preDump: false,
    parentPath: '../pre', externalNsInodes: {},
  }, []);
  for (const f of ['--tcp-established', '--ext-unix-sk', '--shell-job', '--file-locks', '--auto-dedup', '--leave-running', '--manage-cgroups=full', '--track-mem']) t.ok(args.includes(f), f);
  t.same(values(args, '--empty-ns'), ['net']);
  t.same(values(args, '--prev-images-dir'), ['../pre']);
});

t.test('pre-dump: memory only, tracked for the dump after it', async (t) => {
  const plan = dumpPlan(spec, { ...common, pid: 1, leaveRunning: false, preDump: true, externalNsInodes: { net: 5 } }, ['/proc/kcore']);
  t.same([plan.type, plan.logFile], ['pre-dump', 'pre-dump.log']);
  const args = commandLine(plan.options);
  t.ok(args.includes('--track-mem'));
  t.same(values(args, '--ext-mount-map'), [], 'no mounts in a pre-dump');
  t.same(values(args, '--external'), []);
});

t.test('restore: rootfs root, bind mounts back to their sources, stdio pipes and namespaces inherited', async (t) => {
  const args = restoreArgs(spec, {
    ...common, imagePath: '/img', workPath: '/w', root: '/run/pocrun/c1/criu-root', cgroupRoot: '/pocrun/c1', detach: true,
    pidFile: '/run/pocrun/c1/restore.pid', descriptors: ['/dev/null', 'pipe:[123]', 'pipe:[124]'], externalNsFds: { net: 4 },
  });
  t.equal(args[0], 'restore');
  t.same(values(args, '--root'), ['/run/pocrun/c1/criu-root']);
  t.same(values(args, '--cgroup-root'), ['/pocrun/c1']);
  t.same(values(args, '--pidfile'), ['/run/pocrun/c1/restore.pid']);
  t.ok(args.includes('--restore-detached') && args.includes('--restore-sibling'), 'detached, as runc\'s RstSibling');
  t.same(values(args, '--ext-mount-map'), ['/etc/hosts:/run/c1/hosts', '/data:/srv/data', '/dev/null:/dev/null', '/dev/fuse:/dev/fuse']);
  t.same(values(args, '--inherit-fd'), ['fd[1]:pipe:[123]', 'fd[2]:pipe:[124]', 'fd[4]:extRootNetNS']);
  const fg = restoreArgs(spec, { ...common, imagePath: '/i', workPath: '/w', root: '/r', cgroupRoot: '/c', detach: false, pidFile: '/p', descriptors: [], externalNsFds: {} });
  t.notOk(fg.includes('--restore-detached'), 'in the foreground criu stays the parent');
});

t.test('a terminal: the pty slave and /dev/console external at dump, the new slave inherited at restore', async (t) => {
  const dump = dumpArgs(spec, { ...common, pid: 7, leaveRunning: false, preDump: false, externalNsInodes: {}, externalTty: 'tty[8800:2a]' }, []);
  t.same(values(dump, '--external'), ['tty[8800:2a]']);
  t.ok(values(dump, '--ext-mount-map').includes('/dev/console:/dev/console'), '/dev/console, bound from the slave, is external');
  const restore = restoreArgs(spec, {
    ...common, imagePath: '/i', workPath: '/w', root: '/r', cgroupRoot: '/c', detach: true, pidFile: '/p', descriptors: ['/dev/pts/0', '/dev/pts/0', '/dev/pts/0'],
    externalNsFds: {}, terminal: { fd: 5, key: 'tty[8800:2a]', path: '/dev/pts/3' },
  });
  t.same(values(restore, '--inherit-fd'), ['fd[5]:tty[8800:2a]'], 'only the new slave: no stdio pipe');
  t.ok(values(restore, '--ext-mount-map').includes('/dev/console:/dev/pts/3'), 'the new slave bound on /dev/console');
  const plain = dumpArgs(spec, { ...common, pid: 7, leaveRunning: false, preDump: false, externalNsInodes: {} }, []);
  t.notOk(values(plain, '--ext-mount-map').includes('/dev/console:/dev/console'), 'without a terminal /dev/console is left alone');
});

t.test("criu's configuration file: one option a line, values with spaces quoted, what it cannot spell refused", async (t) => {
  t.equal(configFile([['tcp-established'], ['manage-cgroups', 'full'], ['ext-mount-map', '/a b:/a b'], ['external', 'net[5]:extRootNetNS'], ['freeze-cgroup', '/sys/fs/cgroup/#x']]),
    'tcp-established\nmanage-cgroups=full\next-mount-map "/a b:/a b"\nexternal net[5]:extRootNetNS\nfreeze-cgroup "/sys/fs/cgroup/#x"\n');
  t.throws(() => configFile([['ext-mount-map', '/a\nb:/a\nb']]), /--ext-mount-map.*newline or a double quote/);
  t.throws(() => configFile([['ext-mount-map', '/"x":/"x"']]), /double quote/);
  t.same(commandLine([['manage-cgroups', 'soft'], ['verbosity', '4'], ['root', '/r'], ['leave-running']]), ['--manage-cgroups=soft', '--verbosity=4', '--root', '/r', '--leave-running']);
});

t.test('the namespaces criu takes as external: net and pid joined by path', async (t) => {
  t.same(externalNamespacePaths(spec), { net: '/run/netns/n1' });
  t.same(externalNamespacePaths({ ...spec, linux: { namespaces: [{ type: 'pid', path: '/proc/9/ns/pid' }, { type: 'ipc', path: '/x' }] } }), { pid: '/proc/9/ns/pid' });
});

t.test('bad flags are refused with their name', async (t) => {
  t.throws(() => checkCommonOptions({ ...common, manageCgroupsMode: 'sometimes' }), /--manage-cgroups-mode "sometimes"/);
  t.throws(() => checkCommonOptions({ ...common, emptyNs: ['ipc'] }), /--empty-ns "ipc"/);
  t.doesNotThrow(() => checkCommonOptions({ ...common, manageCgroupsMode: 'strict', emptyNs: ['network'] }));
});

t.test("criu's log: its error lines, last ones", async (t) => {
  const log = [
    '(00.000100) Version: 3.17.1',
    '(00.010000) Warn  (criu/kerndat.c:1): something mild',
    '(00.020000) Error (criu/cr-restore.c:1234): Can\'t open core image',
    '(00.030000) Error (criu/cr-restore.c:2500): Restoring FAILED.',
  ].join('\n');
  t.same(criuLogErrors(log), ["Error (criu/cr-restore.c:1234): Can't open core image", 'Error (criu/cr-restore.c:2500): Restoring FAILED.']);
});

t.test('the hooks script: runs restore-hooks at setup-namespaces only, names quoted', async (t) => {
  const script = hooksScript('/opt/poc run/pocrun-ts', "/run/it's", 'c1');
  t.match(script, /^#!\/bin\/sh\n/);
  t.match(script, /\[ "\$CRTOOLS_SCRIPT_ACTION" = setup-namespaces \] \|\| exit 0\n/);
  t.match(script, /exec '\/opt\/poc run\/pocrun-ts' --root '\/run\/it'\\''s' restore-hooks 'c1' "\$CRTOOLS_INIT_PID"\n$/);
});
