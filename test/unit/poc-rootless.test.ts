import t from 'tap';
import { defaultStoreRoot, isRootless, parseRootlessFlags, runDirFor, unmappedOwnerMessage, usernsArgv, usernsMappings } from '../../src/poc/rootless.js';
import { overlayOptions } from '../../src/poc/containers/rootfs.js';
import { resolvConf } from '../../src/poc/network/etc-files.js';

t.test('rootless: not root, or root of poc user namespace', async (t) => {
  t.equal(isRootless({}, 0), false);
  t.equal(isRootless({}, 1000), true);
  t.equal(isRootless({ POC_USERNS: '1' }, 0), true);
});

t.test('where the store and the runtime directory go', async (t) => {
  const table: Array<[string, Record<string, string>, number, string, string]> = [
    ['root', { HOME: '/root', XDG_RUNTIME_DIR: '/run/user/0' }, 0, '/var/lib/poc', '/var/lib/poc'],
    ['user, XDG set', { HOME: '/home/a', XDG_DATA_HOME: '/data/a/', XDG_RUNTIME_DIR: '/run/user/1000' }, 1000, '/data/a/poc', '/run/user/1000/poc'],
    ['user, defaults', { HOME: '/home/a/' }, 1000, '/home/a/.local/share/poc', '/tmp/poc-run-1000'],
    ['relative XDG ignored', { HOME: '/home/a', XDG_DATA_HOME: 'rel', XDG_RUNTIME_DIR: 'rel' }, 1000, '/home/a/.local/share/poc', '/tmp/poc-run-1000'],
    ['in the user namespace: passed down', { HOME: '/home/a', POC_USERNS: '1', POC_RUN_DIR: '/run/user/1000/poc' }, 0, '/home/a/.local/share/poc', '/run/user/1000/poc'],
  ];
  for (const [what, env, euid, store, run] of table) {
    const root = defaultStoreRoot(env, euid);
    t.equal(root, store, `${what}: store`);
    t.equal(runDirFor(root, env, euid), run, `${what}: runtime directory`);
  }
  t.throws(() => defaultStoreRoot({}, 1000), /needs \$HOME or \$XDG_DATA_HOME/);
});

const who = { name: 'alice', uid: 1000, gid: 1000, subuids: [{ start: 100000, count: 65536 }, { start: 300000, count: 10 }], subgids: [{ start: 200000, count: 65536 }] };

t.test('the user namespace: root is the user, then the first subordinate range (unshare and newuidmap)', async (t) => {
  t.same(usernsMappings(who).uid, [{ containerID: 0, hostID: 1000, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }]);
  t.same(usernsArgv(who, { mount: false }), ['unshare', '--user', '--map-root-user', '--map-users=100000,1,65536', '--map-groups=200000,1,65536', '--']);
  t.same(usernsArgv(who, { mount: true }).slice(-4), ['--mount', '--propagation', 'private', '--']);
  const lone = { ...who, subuids: [], subgids: [] };
  t.same(usernsArgv(lone, { mount: false }), ['unshare', '--user', '--map-root-user', '--'], 'no ranges: the single-id mapping');
  t.match(unmappedOwnerMessage(1000, 1000, '         0       1000          1\n', '0 1000 1\n'), /^owner 1000:1000 cannot be given .*only root is mapped.*usermod --add-subuids/);
  t.match(
    unmappedOwnerMessage(70000, 0, '0 1000 1\n1 100000 65536\n', '0 1000 1\n1 200000 65536\n'),
    /it maps uids 0-65536 and gids 0-65536/,
  );
});

t.test('rootless run flags: slirp4netns or none; what needs root is refused naming the flag', async (t) => {
  t.same(parseRootlessFlags({}), { network: 'slirp4netns', rootless: { allowHostLoopback: false } });
  t.same(parseRootlessFlags({ network: 'none' }), { network: 'none', rootless: { allowHostLoopback: false } });
  t.same(parseRootlessFlags({ network: 'slirp4netns:allow_host_loopback=true' }), { network: 'slirp4netns', rootless: { allowHostLoopback: true } });
  t.same(parseRootlessFlags({ network: 'pasta' }), { network: 'pasta', rootless: { allowHostLoopback: false } });
  const bad: Array<[Parameters<typeof parseRootlessFlags>[0], RegExp]> = [
    [{ network: 'bridge' }, /^--network bridge needs root \(the bridge pocbr0/],
    [{ network: 'host' }, /^--network host needs root/],
    [{ network: 'mynet' }, /^--network mynet needs root/],
    [{ network: 'none:x=1' }, /none takes no options/],
    [{ network: 'pasta:--netns,/x' }, /^invalid --network pasta:--netns,\/x: --netns is not for poc's pasta: poc runs pasta on the container's network namespace/],
    [{ network: 'slirp4netns:mtu=1500' }, /unsupported --network slirp4netns option "mtu=1500"/],
    [{ memory: '64m' }, /^-m needs a cgroup/],
    [{ cpus: '1' }, /^--cpus needs a cgroup/],
    [{ pidsLimit: '10' }, /^--pids-limit needs a cgroup/],
    [{ cgroupManager: 'systemd' }, /^--cgroup-manager systemd: a rootless container's scope is the user's own systemd's, and on this host there is none/],
    [{ cgroupManager: 'cgroupfs', cgroupParent: 'x' }, /^invalid --cgroup-parent "x": with the cgroupfs manager it is an absolute cgroup path/],
    [{ cgroupParent: '/a/../b' }, /^invalid --cgroup-parent/],
    [{ cgroupManager: 'lxc' }, /^invalid --cgroup-manager "lxc"/],
  ];
  for (const [flags, want] of bad) t.throws(() => parseRootlessFlags(flags), want, JSON.stringify(flags));
  t.same(parseRootlessFlags({ network: 'pasta:-t,8080,--ipv4-only' }).rootless, { allowHostLoopback: false, pastaOptions: ['-t', '8080', '--ipv4-only'] }, "pasta's options kept as given");
});

t.test('rootless cgroupfs (podman\'s rule): a cgroup only below a --cgroup-parent the user names; limits then allowed', async (t) => {
  const cgroupfs = { manager: 'cgroupfs', parent: '/deleg/poc' };
  t.same(parseRootlessFlags({ cgroupParent: '/deleg//poc/', memory: '64m', cpus: '1', pidsLimit: '20' }).cgroup, cgroupfs, 'no systemd: cgroupfs, the parent normalised');
  t.same(parseRootlessFlags({ cgroupManager: 'cgroupfs', cgroupParent: '/deleg/poc' }, { uid: 1001, controllers: [] }).cgroup, cgroupfs, 'also where systemd delegates');
  t.equal(parseRootlessFlags({ cgroupManager: 'cgroupfs' }, { uid: 1001, controllers: ['memory'] }).cgroup, undefined, 'cgroupfs without a parent: none, as podman');
  t.throws(() => parseRootlessFlags({ cgroupManager: 'cgroupfs', memory: '64m' }, { uid: 1001, controllers: ['memory'] }), /^-m needs a cgroup of the container's own, .*a scope of its own systemd \(--cgroup-manager systemd\), or below --cgroup-parent/);
});

t.test("rootless limits where the user's systemd delegates: a scope in its user.slice; a missing controller named", async (t) => {
  const all = { uid: 1001, controllers: ['cpu', 'memory', 'pids'] };
  const scope = { manager: 'systemd', parent: 'user.slice', user: 1001 };
  t.same(parseRootlessFlags({}, all), { network: 'slirp4netns', rootless: { allowHostLoopback: false }, cgroup: scope }, 'every container gets a scope, as podman with its systemd manager');
  t.same(parseRootlessFlags({ memory: '64m', cpus: '0.5', pidsLimit: '20', cgroupManager: 'systemd' }, all).cgroup, scope, 'the limits are allowed');
  const bad: Array<[Parameters<typeof parseRootlessFlags>[0], RegExp]> = [
    [{ memory: '64m' }, /^-m needs the memory controller, which the user's systemd does not delegate \(user@1001\.service has cpu pids\)/],
    [{ cgroupManager: 'cgroupfs', memory: '64m' }, /^-m needs a cgroup of the container's own/],
    [{ cgroupParent: '/user.slice' }, /^invalid --cgroup-parent "\/user.slice": with the systemd cgroup manager it is a slice of the user's systemd/],
  ];
  for (const [flags, want] of bad) t.throws(() => parseRootlessFlags(flags, { uid: 1001, controllers: ['cpu', 'pids'] }), want, JSON.stringify(flags));
  t.same(parseRootlessFlags({ cgroupParent: 'mine.slice' }, all).cgroup, { ...scope, parent: 'mine.slice' }, "--cgroup-parent: a slice of the user's systemd");
  t.throws(() => parseRootlessFlags({ memory: '64m' }), /^-m needs a cgroup of the container's own, .*on this host none is \(that takes cgroup v2 and the user's own systemd/, 'none delegated');
});

t.test('overlay in a user namespace keeps its attributes in user.overlay.* (userxattr)', async (t) => {
  t.equal(overlayOptions('/l', '/u', '/w', true), 'lowerdir=/l,upperdir=/u,workdir=/w,userxattr');
  t.equal(overlayOptions('/l', '/u', '/w'), 'lowerdir=/l,upperdir=/u,workdir=/w');
});

t.test("pasta's resolv.conf: its --dns-forward address", async (t) => {
  t.match(resolvConf('nameserver 127.0.0.53\nsearch example.org\n', 'pasta'), /^# Generated by poc: pasta forwards DNS to the host's resolvers\.\nnameserver 169\.254\.1\.1\nsearch example\.org\n$/);
});

t.test("slirp4netns's resolv.conf: its DNS forwarder, the host's search and options kept", async (t) => {
  const out = resolvConf('nameserver 127.0.0.53\nsearch example.org\noptions edns0\n', 'slirp4netns');
  t.match(out, /^nameserver 10\.0\.2\.3$/m);
  t.match(out, /^search example\.org$/m);
  t.notMatch(out, /127\.0\.0\.53/);
});
