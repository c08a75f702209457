import t from 'tap';
import { compileCreatePlan, type CreatePlanOptions } from '../../src/plan/compile.js';
import { userNamespaceFirst } from '../../src/plan/namespaces.js';
import { decodePlan, encodePlan } from '../../src/plan/wire.js';
import { parseMountOptions, MS, MOUNT_ATTR } from '../../src/plan/mount-options.js';
import { defaultSpec } from '../../src/spec/default.js';
import type { Spec } from '../../src/spec/generated/config.js';
import { PLAIN_HOST } from '../helpers/host-facts.js';

const opts: CreatePlanOptions = {
  bundle: '/b', stateDir: '/run/pocrun/c1', noPivot: false, preserveFds: 0,
  cgroupProcsFiles: ['/sys/fs/cgroup/memory/pocrun/c1/cgroup.procs'],
  cgroupMounts: [
    { name: 'memory', controllers: 'memory', hostPath: '/sys/fs/cgroup/memory/pocrun/c1', links: [] },
    { name: 'cpu,cpuacct', controllers: 'cpu,cpuacct', hostPath: '/sys/fs/cgroup/cpu,cpuacct/pocrun/c1', links: ['cpu', 'cpuacct'] },
  ],
  cgroupVersion: 1, mode: 'detach', host: PLAIN_HOST,
};

function spec(change: (s: Spec) => void = () => {}): Spec {
  const s = defaultSpec();
  s.process!.terminal = false;
  change(s);
  return s;
}

const names = (steps: readonly (readonly string[])[]) => steps.map((s) => s[0]);
const find = (steps: readonly (readonly string[])[], name: string) => steps.filter((s) => s[0] === name);

t.test('the parent stage joins the cgroup, makes the fifo and clones the new namespaces', async (t) => {
  const { steps } = compileCreatePlan(spec(), opts);
  const clone = steps.findIndex((s) => s[0] === 'clone');
  t.same(names(steps.slice(0, clone)), ['cgroup-join', 'exec-fifo']);
  t.same(steps[clone], ['clone', 'detach', 'pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup']);
});

t.test('cgroup v2: the device filter is attached in the parent stage, before any namespace is joined', async (t) => {
  const insns = new Uint8Array([0xb4, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);
  const { steps } = compileCreatePlan(spec((s) => {
    s.linux!.namespaces!.push({ type: 'user', path: '/proc/1/ns/user' });
  }), { ...opts, deviceFilter: { dir: '/sys/fs/cgroup/pocrun/c1', insns } });
  t.same(find(steps, 'device-filter'), [['device-filter', '/sys/fs/cgroup/pocrun/c1', 'b4000000010000009500000000000000', '/linux/resources/devices']]);
  t.ok(names(steps).indexOf('device-filter') < names(steps).indexOf('setns'), 'with the host\'s privileges');
  t.notOk(find(compileCreatePlan(spec(), opts).steps, 'device-filter').length, 'none on v1');
});

t.test('namespaces with a path are joined, user first and mount last', async (t) => {
  const { steps } = compileCreatePlan(spec((s) => {
    s.linux!.namespaces = [{ type: 'mount', path: '/proc/1/ns/mnt' }, { type: 'network', path: '/var/run/netns/x' }, { type: 'pid' }];
    delete s.hostname;
  }), opts);
  t.same(find(steps, 'setns'), [['setns', '/var/run/netns/x', 'net', '/linux/namespaces/1'], ['setns', '/proc/1/ns/mnt', 'mnt', '/linux/namespaces/0']]);
  t.same(find(steps, 'clone')[0], ['clone', 'detach', 'pid']);
});

t.test('the child stage runs in the order the spec requires', async (t) => {
  const { steps } = compileCreatePlan(spec((s) => {
    s.hooks = { createContainer: [{ path: '/bin/true' }], startContainer: [{ path: '/bin/true' }] };
  }), opts);
  const order = names(steps);
  const at = (n: string) => order.indexOf(n);
  t.ok(at('rootfs') < at('mount'), 'rootfs before mounts');
  t.ok(at('mount') < at('mknod'), 'devices after mounts');
  t.ok(at('sync') < at('run-hooks') && at('run-hooks') < at('pivot-root'), 'createContainer hooks before pivot_root');
  t.ok(at('pivot-root') < at('mask') && at('mask') < at('readonly'), 'masks after pivot_root');
  t.ok(at('user') < at('caps'), 'capabilities after the user switch (keep-caps)');
  t.ok(at('exec') < at('created') && at('created') < at('wait-start'), 'the executable is found before create returns');
  t.equal(order.lastIndexOf('run-hooks'), at('wait-start') + 1, 'startContainer hooks after start');
  t.equal(order.at(-1), 'execve');
});

t.test('mounts: options become flags, data and recursive attributes; bind sources are relative to the bundle', async (t) => {
  const { steps } = compileCreatePlan(spec((s) => {
    s.mounts = [
      { destination: '/data', type: 'bind', source: 'data', options: ['rbind', 'ro', 'rprivate'] },
      { destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'size=1m', 'mode=700', 'rnoexec'] },
    ];
  }), opts);
  const mounts = find(steps, 'mount');
  t.same(mounts[0], ['mount', '/b/data', '/data', '', String(MS.BIND | MS.REC | MS.RDONLY), '', 'auto', '/mounts/0']);
  t.same(mounts[1], ['mount', 'tmpfs', '/t', 'tmpfs', String(MS.NOSUID), 'size=1m,mode=700', 'dir', '/mounts/1']);
  t.same(find(steps, 'propagation').find((s) => s[1] === '/data'), ['propagation', '/data', String(MS.PRIVATE | MS.REC), '/mounts/0']);
  t.same(find(steps, 'setattr')[0], ['setattr', '/t', String(MOUNT_ATTR.NOEXEC), '0', '/mounts/1']);
});

t.test('id-mapped bind mounts: the tree is made in the parent stage, attached in the child; own or the container\'s maps', async (t) => {
  const { steps } = compileCreatePlan(spec((s) => {
    s.linux!.namespaces!.push({ type: 'user', path: '/proc/42/ns/user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    s.mounts = [
      { destination: '/own', source: '/srv/own', options: ['rbind', 'ridmap', 'ro', 'rprivate'], uidMappings: [{ containerID: 0, hostID: 1000, size: 10 }, { containerID: 10, hostID: 5000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 2000, size: 1 }] },
      { destination: '/ctr', source: 'data', options: ['bind', 'idmap'] },
      { destination: '/plain', source: '/srv/plain', options: ['bind'] },
    ];
  }), opts);
  t.same(find(steps, 'idmap-tree'), [
    ['idmap-tree', '/srv/own', '1', '1', '0 1000 10\n10 5000 1\n', '0 2000 1\n', '/mounts/0'],
    ['idmap-tree', '/b/data', '0', '0', '0 100000 65536\n', '0 200000 65536\n', '/mounts/1'],
  ], 'own mappings, recursive; then the container\'s, for a bundle-relative source');
  const trees = steps.findIndex((s) => s[0] === 'idmap-tree');
  t.ok(trees < steps.findIndex((s) => s[0] === 'setns'), 'in the host\'s namespaces: before any setns');
  t.same(find(steps, 'move-tree'), [
    ['move-tree', '0', '/own', String(MS.BIND | MS.REC | MS.RDONLY), '/mounts/0'],
    ['move-tree', '1', '/ctr', String(MS.BIND), '/mounts/1'],
  ]);
  t.same(find(steps, 'mount').filter((m) => m[2] === '/plain').length, 1, 'a plain bind is a mount step');
  t.same(find(steps, 'propagation').find((s) => s[1] === '/own'), ['propagation', '/own', String(MS.PRIVATE | MS.REC), '/mounts/0']);
  t.same(parseMountOptions(['idmap', 'ridmap']).idmap, 'ridmap');
});

t.test('netDevices: names checked, moved by the runtime at sync netdevices; intelRdt is refused', async (t) => {
  const plan = compileCreatePlan(spec((s) => {
    s.linux!.netDevices = { eth1: { name: 'net%d' }, veth9: {} };
  }), opts);
  t.same(plan.netDevices, [
    { host: 'eth1', name: 'net%d', ref: '/linux/netDevices/eth1' },
    { host: 'veth9', name: 'veth9', ref: '/linux/netDevices/veth9' },
  ], 'the name inside defaults to the host\'s; a %d template is kept for the kernel');
  const clone = plan.steps.findIndex((s) => s[0] === 'clone');
  t.same(plan.steps.slice(clone + 1, clone + 3), [['sync', 'netdevices'], ['setsid']], 'first thing in the new namespaces');
  t.same(compileCreatePlan(spec(), opts).netDevices, []);
  t.notOk(compileCreatePlan(spec(), opts).steps.some((s) => s[1] === 'netdevices'), 'no sync without devices');
  const bad: [(s: Spec) => void, RegExp][] = [
    [(s) => { s.linux!.netDevices = { eth1: {} }; s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network'); }, /\/linux\/netDevices: moving network devices needs a network namespace/],
    [(s) => { s.linux!.netDevices = { 'a/b': {} }; }, /\/linux\/netDevices\/a~1b: "a\/b" is not a network interface name/],
    [(s) => { s.linux!.netDevices = { eth1: { name: 'much-too-long-name' } }; }, /\/linux\/netDevices\/eth1\/name: "much-too-long-name" is not a network interface name/],
    [(s) => { s.linux!.netDevices = { eth1: { name: '..' } }; }, /\/linux\/netDevices\/eth1\/name: "\.\." is not/],
    [(s) => { s.linux!.intelRdt = { closID: 'c1' }; }, /\/linux\/intelRdt: Intel RDT \(resctrl\) is not supported by pocrun/],
  ];
  for (const [change, re] of bad) t.throws(() => compileCreatePlan(spec(change), opts), re);
});

t.test('a v1 cgroup mount is a tmpfs and one mount per hierarchy, with links', async (t) => {
  const { steps } = compileCreatePlan(spec(), opts);
  const cg = steps.filter((s) => s.at(-1) === '/mounts/6');
  t.same(cg.map((s) => [s[0], s[2] ?? '']), [
    ['mount', '/sys/fs/cgroup'], ['mount', '/sys/fs/cgroup/memory'], ['mount', '/sys/fs/cgroup/cpu,cpuacct'],
    ['symlink', '/sys/fs/cgroup/cpu'], ['symlink', '/sys/fs/cgroup/cpuacct'], ['remount', String(MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC)],
  ]);
  t.equal(cg[1]![3], 'cgroup', 'a fresh cgroup mount inside a cgroup namespace');
});

t.test('config that cannot be honoured is refused naming the field', async (t) => {
  const cases: [string, (s: Spec) => void, RegExp][] = [
    ['empty args', (s) => { s.process!.args = []; }, /\/process\/args: must be a non-empty array/],
    ['relative cwd', (s) => { s.process!.cwd = 'tmp'; }, /\/process\/cwd: must be an absolute path/],
    ['relative destination', (s) => { s.mounts!.push({ destination: 'x', type: 'tmpfs' }); }, /\/mounts\/7\/destination: must be an absolute path/],
    ['climbing destination', (s) => { s.mounts!.push({ destination: '/a/../../etc', type: 'tmpfs' }); }, /\/mounts\/7\/destination: must not contain "\.\."/],
    ['unknown mount type', (s) => { s.mounts!.push({ destination: '/x', type: 'nosuchfs' }); }, /\/mounts\/7\/type: unknown filesystem type "nosuchfs"/],
    ['device outside /dev', (s) => { s.linux!.devices = [{ path: '/etc/evil', type: 'c', major: 1, minor: 3 }]; }, /\/linux\/devices\/0\/path: device path must be under \/dev/],
    ['uid map without user namespace', (s) => { s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]; }, /need a user namespace/],
    ['unknown capability', (s) => { s.process!.capabilities!.bounding = ['CAP_FLY']; }, /\/process\/capabilities\/bounding: unknown capability "CAP_FLY"/],
    ['unknown rlimit', (s) => { s.process!.rlimits = [{ type: 'RLIMIT_FOO', soft: 1, hard: 1 }]; }, /\/process\/rlimits\/0\/type: unknown rlimit type/],
    ['terminal without socket', (s) => { s.process!.terminal = true; }, /needs --console-socket/],
    ['no mount namespace, masked paths', (s) => { s.linux!.namespaces = [{ type: 'pid' }]; delete s.hostname; }, /config\.json \/linux\/maskedPaths: masking paths needs a mount namespace/],
    ['no mount namespace, read-only root', (s) => {
      s.linux!.namespaces = [{ type: 'pid' }]; delete s.hostname; s.linux!.maskedPaths = []; s.linux!.readonlyPaths = []; s.root!.readonly = true;
    }, /config\.json \/root\/readonly: a read-only root needs a mount namespace/],
    ['hostname without uts', (s) => { s.linux!.namespaces = [{ type: 'mount' }]; }, /\/hostname: setting the hostname needs a UTS namespace/],
    ['idmap on a filesystem mount', (s) => { s.mounts![0]!.options = ['idmap']; }, /\/mounts\/0\/options: an id-mapped mount must be a bind mount/],
    ['idmap without mappings or a user namespace', (s) => { s.mounts!.push({ destination: '/x', source: '/tmp', options: ['rbind', 'idmap'] }); }, /\/mounts\/7: an id-mapped mount needs uidMappings and gidMappings/],
    ['uidMappings without gidMappings', (s) => { s.mounts!.push({ destination: '/x', source: '/tmp', options: ['bind'], uidMappings: [{ containerID: 0, hostID: 1, size: 1 }] }); }, /\/mounts\/7: uidMappings and gidMappings go together/],
    ['NUL in an argument', (s) => { s.process!.args = ['sh\u0000x']; }, /NUL/],
  ];
  for (const [name, change, re] of cases) {
    t.throws(() => encodePlan(compileCreatePlan(spec(change), opts).steps), { name: 'PocrunError', message: re }, name);
  }
});

t.test("without a mount namespace: chroot into the rootfs, nothing that would change the host's mounts", async (t) => {
  const shared = (change: (s: Spec) => void = () => {}) => spec((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'mount');
    s.linux!.maskedPaths = [];
    s.linux!.readonlyPaths = [];
    s.root!.readonly = false;
    change(s);
  });
  const names = (p: { steps: readonly (readonly string[])[] }) => p.steps.map((st) => st[0]);
  const plain = compileCreatePlan(shared(), opts);
  t.ok(names(plain).includes('root-open') && names(plain).includes('chroot-only'), 'root-open, then chroot-only');
  for (const step of ['rootfs', 'pivot-root', 'chroot', 'propagation', 'mask', 'readonly', 'remount-root']) {
    t.notOk(names(plain).includes(step), `no ${step} step`);
  }
  t.ok(names(plain).includes('mount'), "the config's mounts are made (under the rootfs)");
  t.ok(names(plain).includes('mknod'), 'device nodes on the /dev tmpfs the config mounts');
  const noDev = compileCreatePlan(shared((s) => { s.mounts = s.mounts!.filter((m) => m.destination !== '/dev' && !m.destination.startsWith('/dev/')); }), opts);
  t.notOk(noDev.steps.some((st) => st[0] === 'mknod' || (st[0] === 'symlink' && st[2]!.startsWith('/dev/'))), "no /dev of its own: the rootfs's /dev is left alone");
  t.same(compileCreatePlan(shared(), { ...opts, noPivot: true }).steps.filter((st) => st[0] === 'chroot-only').length, 1, '--no-pivot too');
  t.throws(() => compileCreatePlan(shared(), { ...opts, rootfsIsHostRoot: true }), /\/mounts\/0: the rootfs is the host's own root/);
  t.throws(() => compileCreatePlan(shared((s) => { s.linux!.rootfsPropagation = 'shared'; }), opts), /\/linux\/rootfsPropagation: needs a mount namespace/);
  t.throws(() => compileCreatePlan(shared((s) => {
    s.mounts = [];
    s.linux!.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }];
  }), opts), /\/linux\/devices: device nodes needs a mount namespace/);
});

t.test('a user namespace asks the runtime for maps first and binds devices instead of mknod', async (t) => {
  const plan = compileCreatePlan(spec((s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  }), opts);
  t.ok(plan.newUserNamespace);
  const clone = plan.steps.findIndex((s) => s[0] === 'clone');
  t.same(plan.steps[clone + 1], ['sync', 'maps']);
  t.same(find(plan.steps, 'exec-fifo')[0], ['exec-fifo', '/run/pocrun/c1', '100000', '100000']);
  t.equal(find(plan.steps, 'mknod').length, 0);
  t.equal(find(plan.steps, 'bind-dev').length, 6);
});

t.test('rootless: the helper makes the user namespace first (--new-userns) when it joins none', async (t) => {
  const userns = (s: Spec) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  };
  const table: [string, { type: string; path?: string }[], boolean, boolean][] = [
    ['a new user namespace, not root', [{ type: 'user' }, { type: 'mount' }], false, true],
    ['the same, as root', [{ type: 'user' }, { type: 'mount' }], true, false],
    ['no user namespace', [{ type: 'mount' }], false, false],
    ['a joined user namespace', [{ type: 'user', path: '/proc/1/ns/user' }], false, false],
    ['a new one beside a joined network namespace', [{ type: 'user' }, { type: 'network', path: '/run/netns/x' }], false, false],
  ];
  for (const [name, namespaces, isRoot, want] of table) t.equal(userNamespaceFirst(namespaces, isRoot), want, name);
  const plan = compileCreatePlan(spec(userns), { ...opts, userNamespaceFirst: true });
  const clone = find(plan.steps, 'clone')[0]!;
  t.notOk(clone.includes('user'), `clone makes the others only: ${clone.join(' ')}`);
  t.equal(find(plan.steps, 'sync').filter((s) => s[1] === 'maps').length, 0, 'no sync maps in the child: the helper asked before its re-exec');
  t.same(find(plan.steps, 'exec-fifo')[0], ['exec-fifo', '/run/pocrun/c1', '0', '0'], "the fifo's owner as the namespace sees it");
  t.throws(() => compileCreatePlan(spec(), { ...opts, userNamespaceFirst: true }), /userNamespaceFirst needs a new user namespace/);
});

t.test('mount options', async (t) => {
  const cases: [string[], Partial<ReturnType<typeof parseMountOptions>>][] = [
    [['ro', 'rw'], { flags: 0 }],
    [['nosuid', 'nodev', 'noexec'], { flags: MS.NOSUID | MS.NODEV | MS.NOEXEC }],
    [['rbind'], { flags: MS.BIND | MS.REC }],
    [['defaults', 'mode=755'], { flags: 0, data: 'mode=755' }],
    [['rshared'], { propagation: [MS.SHARED | MS.REC] }],
    [['rro', 'rrw'], { attrSet: 0, attrClear: MOUNT_ATTR.RDONLY }],
    [['relatime', 'norelatime', 'strictatime'], { flags: MS.STRICTATIME }],
  ];
  for (const [options, want] of cases) t.match(parseMountOptions(options), want, options.join(','));
});

t.test('tmpcopyup: a tmpfs mount of kind copyup (podman --read-only); lo is brought up in a new netns only', async (t) => {
  t.match(parseMountOptions(['rw', 'tmpcopyup', 'nosuid']), { copyUp: true, data: '', flags: MS.NOSUID });
  const { steps } = compileCreatePlan(spec((s) => {
    s.mounts!.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'nosuid', 'tmpcopyup'] });
  }), opts);
  t.same(find(steps, 'mount').find((m) => m[2] === '/tmp'), ['mount', 'tmpfs', '/tmp', 'tmpfs', String(MS.NOSUID), '', 'copyup', '/mounts/7']);
  t.throws(() => compileCreatePlan(spec((s) => {
    s.mounts!.push({ destination: '/x', type: 'bind', source: '/tmp', options: ['rbind', 'tmpcopyup'] });
  }), opts), /tmpcopyup is only for tmpfs mounts/);
  t.same(find(steps, 'loopback'), [['loopback', '/linux/namespaces']]);
  const joined = compileCreatePlan(spec((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path: '/var/run/netns/x' } : n));
  }), opts);
  t.same(find(joined.steps, 'loopback'), []);
});

t.test('the wire encoding round-trips', async (t) => {
  const steps = [['mount', 'a', 'ü', ''], ['execve'], []];
  t.same(decodePlan(encodePlan(steps)), steps);
});

t.test('host facts are inputs of the plan, never probed by it: each one given changes the plan so', async (t) => {
  const asked: string[] = [];
  const host = {
    ...PLAIN_HOST,
    security: () => (asked.push('security'), { apparmor: false, selinux: false }),
    isHostNamespace: (ns: string, path: string) => (asked.push(`${ns} ${path}`), path === '/proc/1/ns/net'),
  };
  const plain = compileCreatePlan(spec(), { ...opts, host }).steps;
  t.same(asked, [], 'neither the LSMs nor the namespaces are asked about for a config without labels or sysctls');
  t.notOk(plain.some((s) => s[0] === 'symlink' && s[2] === '/dev/core'), 'no /dev/core without /proc/kcore');
  t.ok(plain.some((s) => s[0] === 'mknod'), 'device nodes made with mknod');
  const kcore = compileCreatePlan(spec(), { ...opts, host: { ...host, hasKcore: true } }).steps;
  t.same(kcore.filter((s) => s[2] === '/dev/core'), [['symlink', '/proc/kcore', '/dev/core', '/dev']], '/dev/core with /proc/kcore');
  const nested = compileCreatePlan(spec(), { ...opts, host: { ...host, runtimeInUserNamespace: true } }).steps;
  t.notOk(nested.some((s) => s[0] === 'mknod'), 'a runtime in a user namespace makes no nodes');
  t.equal(nested.filter((s) => s[0] === 'bind-dev').length, 6, 'it binds the host\'s');
  const joinNet = (path: string) => spec((s) => {
    s.linux!.namespaces = s.linux!.namespaces!.map((n) => (n.type === 'network' ? { type: 'network', path } : n));
    s.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
  });
  t.ok(compileCreatePlan(joinNet('/var/run/netns/x'), { ...opts, host }).steps.some((s) => s[0] === 'sysctl'), 'a sysctl in a joined netns');
  t.throws(() => compileCreatePlan(joinNet('/proc/1/ns/net'), { ...opts, host }), /would change the host: the container joins the host's network namespace/);
  t.same(asked, ['net /var/run/netns/x', 'net /proc/1/ns/net'], 'the namespace asked about is the joined one');
  const labelled = spec((s) => { s.process!.apparmorProfile = 'p'; });
  t.throws(() => compileCreatePlan(labelled, { ...opts, host }), /AppArmor is not enabled on this host/);
  const withLsm = { ...host, security: () => ({ apparmor: true, selinux: true }) };
  t.same(compileCreatePlan(labelled, { ...opts, host: withLsm }).steps.filter((s) => s[0] === 'apparmor'), [['apparmor', 'p', '/process/apparmorProfile']]);
});
