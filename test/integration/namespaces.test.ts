/**
 * Namespaces, proven from inside real containers: a user namespace with uid/gid maps (ids, file ownership,
 * mounts), a time namespace with offsets, and joining the namespaces of another running container by path, for
 * every type including user (and a mount namespace made on the host).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../helpers/engines.js';
import { makeBundle, setup } from '../helpers/runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';

const { work, rt, residue } = setup();
// The container's root is an unprivileged host id: it must be able to reach its rootfs.
chmodSync(work, 0o755);
let n = 0;

const HOST_ID = 100000;
const SIZE = 65536;

/** A user namespace mapping container 0..65535 to host HOST_ID..; the rootfs belongs to the container's root. */
function userns(s: Spec, hostId = HOST_ID): void {
  s.linux!.namespaces!.push({ type: 'user' });
  s.linux!.uidMappings = [{ containerID: 0, hostID: hostId, size: SIZE }];
  s.linux!.gidMappings = [{ containerID: 0, hostID: hostId, size: SIZE }];
}

function chownRootfs(rootfs: string, id: number): void {
  const r = spawnSync('chown', ['-R', '-h', `${id}:${id}`, rootfs]);
  if (r.status !== 0) throw new Error(`chown ${rootfs} failed`);
}

function inContainer(script: string, change: (s: Spec) => void = () => {}, prepare: (rootfs: string) => void = () => {}) {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sh', '-c', script];
    change(s);
  });
  prepare(b.rootfs);
  const r = rt.run(['run', '--bundle', b.dir, `n${n++}`]);
  return { ...r, bundle: b };
}

t.test('user namespace: root inside is the mapped host id; files it makes belong to that id', async (t) => {
  const r = inContainer(
    'id; cat /proc/self/uid_map /proc/self/gid_map; touch /root-file; chown 1000:1000 /root-file; ls -ln /root-file | awk \'{print $3, $4}\'',
    (s) => {
      userns(s);
      s.process!.capabilities = { bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], permitted: ['CAP_CHOWN'] };
    },
    (rootfs) => chownRootfs(rootfs, HOST_ID),
  );
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.equal(lines[0], 'uid=0(root) gid=0(root)');
  t.match(lines[1], /^\s*0\s+100000\s+65536$/);
  t.match(lines[2], /^\s*0\s+100000\s+65536$/);
  t.equal(lines[3], '1000 1000', 'chown to a mapped id, as the container sees it');
  const rootFile = statSync(join(r.bundle.rootfs, 'root-file'));
  t.same([rootFile.uid, rootFile.gid], [HOST_ID + 1000, HOST_ID + 1000], 'as the host sees it');
  const dev = statSync(join(r.bundle.rootfs, 'etc'));
  t.equal(dev.uid, HOST_ID);
});

t.test('user namespace: mounts, devices, masked and read-only paths work; the process user is mapped too', async (t) => {
  const data = join(work, 'userns-data');
  mkdirSync(data);
  writeFileSync(join(data, 'owned'), 'by the container root\n');
  spawnSync('chown', ['-R', `${HOST_ID}:${HOST_ID}`, data]);
  const r = inContainer(
    [
      'cat /data/owned; ls -ln /data/owned | awk \'{print $3}\'',
      'grep -E " (/proc|/dev|/sys|/data|/scratch|/dev/pts|/sys/fs/cgroup/memory) " /proc/self/mounts | awk \'{print $2, $3}\'',
      'echo x > /dev/null && head -c 3 /dev/zero | wc -c',
      'wc -c < /proc/keys; (echo 1 > /proc/sys/kernel/shmmax) 2>/dev/null || echo sys-ro',
      'stat -c "%u %g" /dev',
      'id -u; touch /scratch/f; stat -c %u /scratch/f',
    ].join('; '),
    (s) => {
      userns(s);
      s.process!.user = { uid: 1000, gid: 1000 };
      s.mounts!.push({ destination: '/data', type: 'bind', source: data, options: ['rbind', 'ro'] });
      s.mounts!.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['mode=1777'] });
    },
    (rootfs) => chownRootfs(rootfs, HOST_ID),
  );
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.same(lines.slice(0, 2), ['by the container root', '0'], 'a bind mount of the mapped root\'s files shows them as root\'s');
  t.same(lines.slice(2, 9).map((l) => l.split(' ')[0]), ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup/memory', '/data', '/scratch']);
  t.same(lines.slice(9), ['3', '0', 'sys-ro', '0 0', '1000', '1000', ''], 'devices, masked and read-only paths, /dev owned by the container root, the process user');
});

t.test('user namespace: oom_score_adj is set before entering it; missing maps are refused', async (t) => {
  const r = inContainer('cat /proc/self/oom_score_adj', (s) => {
    userns(s);
    s.process!.oomScoreAdj = 300;
  }, (rootfs) => chownRootfs(rootfs, HOST_ID));
  t.equal(r.stdout, '300\n', r.stderr);
  const missing = inContainer('true', (s) => { s.linux!.namespaces!.push({ type: 'user' }); });
  t.match(missing.stderr, /config.json \/linux\/uidMappings: a new user namespace needs uidMappings and gidMappings/);
});

/** A host directory with files owned by 0, 5 and 1000, for id-mapped mounts. */
function ownedFiles(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  for (const [file, id] of [['zero', 0], ['five', 5], ['thousand', 1000]] as const) {
    writeFileSync(join(dir, file), file);
    spawnSync('chown', [`${id}:${id}`, join(dir, file)]);
  }
  chmodSync(dir, 0o755);
  return dir;
}
const owners = 'for f in zero five thousand; do echo "$f $(stat -c %u:%g /m/$f) $(stat -c %u:%g /p/$f)"; done';

t.test('id-mapped bind mount with its own mappings: the files appear under the mapped ids, the host\'s stay', async (t) => {
  const dir = ownedFiles('idmap-own');
  const r = inContainer(owners, (s) => {
    s.mounts!.push(
      { destination: '/m', source: dir, options: ['bind', 'idmap'], uidMappings: [{ containerID: 0, hostID: 2000, size: 10 }], gidMappings: [{ containerID: 0, hostID: 3000, size: 10 }] },
      { destination: '/p', source: dir, options: ['bind'] },
    );
  });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'zero 2000:3000 0:0\nfive 2005:3005 5:5\nthousand 65534:65534 1000:1000\n', 'mapped on /m (1000 is outside the range), unchanged on /p');
  t.same([statSync(join(dir, 'five')).uid, statSync(join(dir, 'five')).gid], [5, 5], 'nothing changed on disk');
});

t.test('id-mapped bind mount in a user namespace: idmap alone takes the container\'s mappings', async (t) => {
  const dir = ownedFiles('idmap-userns');
  const r = inContainer(owners, (s) => {
    userns(s);
    s.mounts!.push({ destination: '/m', source: dir, options: ['rbind', 'ridmap', 'ro'] }, { destination: '/p', source: dir, options: ['bind'] });
  }, (rootfs) => chownRootfs(rootfs, HOST_ID));
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'zero 0:0 65534:65534\nfive 5:5 65534:65534\nthousand 1000:1000 65534:65534\n', 'the host\'s ids as the container\'s own on /m; nobody on the plain bind');
  const write = inContainer('touch /m/new 2>&1; echo rc=$?', (s) => {
    userns(s);
    s.mounts!.push({ destination: '/m', source: dir, options: ['rbind', 'ridmap', 'ro'] });
  }, (rootfs) => chownRootfs(rootfs, HOST_ID));
  t.match(write.stdout, /Read-only file system\nrc=1/, 'ro applies to the id-mapped mount');
});

t.test('id-mapped mounts: a bad mapping or source is a clear error that leaves nothing behind', async (t) => {
  const dir = ownedFiles('idmap-bad');
  const overlap = inContainer('true', (s) => {
    s.mounts!.push({ destination: '/m', source: dir, options: ['bind', 'idmap'], uidMappings: [{ containerID: 0, hostID: 2000, size: 10 }, { containerID: 5, hostID: 4000, size: 10 }], gidMappings: [{ containerID: 0, hostID: 3000, size: 10 }] });
  });
  t.not(overlap.status, 0);
  t.match(overlap.stderr, /prepare id-mapped mount \(config.json \/mounts\/\d+\): id-mapped bind of .*idmap-bad: write uid_map: Invalid argument/);
  const missing = inContainer('true', (s) => {
    s.mounts!.push({ destination: '/m', source: join(work, 'no-such-dir'), options: ['bind', 'idmap'], uidMappings: [{ containerID: 0, hostID: 2000, size: 1 }], gidMappings: [{ containerID: 0, hostID: 2000, size: 1 }] });
  });
  t.match(missing.stderr, /id-mapped bind of .*no-such-dir: open_tree: No such file or directory/);
});

/** A veth pair of the test's own, the first end with addresses, as a host device to move into a container. */
function vethPair(name: string): () => void {
  const ip = (...args: string[]) => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
  ip('addr', 'add', '10.251.0.2/24', 'dev', name);
  ip('-6', 'addr', 'add', 'fd00:251::2/64', 'dev', name, 'nodad');
  return () => spawnSync('ip', ['link', 'del', `${name}p`]);
}
const hostHas = (dev: string) => spawnSync('ip', ['link', 'show', dev]).status === 0;

t.test('netDevices: a host device moves in under its new name, keeps its addresses and is up; it ends with the container', async (t) => {
  const removePair = vethPair('pocnd0');
  t.teardown(removePair);
  const r = inContainer('ip -o addr show dev eth5; ip -o link show dev eth5', (s) => {
    s.linux!.netDevices = { pocnd0: { name: 'eth5' } };
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /eth5\s+inet 10\.251\.0\.2\/24 .*scope global/, 'its IPv4 address');
  t.match(r.stdout, /eth5\s+inet6 fd00:251::2\/64 scope global/, 'its IPv6 address');
  t.match(r.stdout, /eth5@\S+: <[^>]*\bUP\b/, 'set up');
  t.notOk(hostHas('pocnd0'), 'gone from the host');
  // The kernel tears a network namespace down in a workqueue after its last user is gone, so the
  // peer disappears shortly after the container ends, not at once.
  const peerGone = (() => { try { return waitFor('pocnd0p to go', () => (hostHas('pocnd0p') ? undefined : true), 5000); } catch { return false; } })();
  t.ok(peerGone, 'a virtual device ends with the namespace, its peer with it');

  const removeAnother = vethPair('pocnd1');
  t.teardown(removeAnother);
  const template = inContainer('ip -o link show | grep -o "net[0-9]*@"', (s) => {
    s.linux!.netDevices = { pocnd1: { name: 'net%d' } };
  });
  t.equal(template.stdout, 'net0@\n', 'a %d template: the kernel picks the number');
});

t.test('netDevices: a missing device or a taken name is a clear error, and nothing is left', async (t) => {
  const missing = inContainer('true', (s) => { s.linux!.netDevices = { pocnd9: {} }; });
  t.not(missing.status, 0);
  t.match(missing.stderr, /config.json \/linux\/netDevices\/pocnd9: there is no network device "pocnd9" on the host/);
  const removePair = vethPair('pocnd2');
  t.teardown(removePair);
  const taken = inContainer('true', (s) => { s.linux!.netDevices = { pocnd2: { name: 'lo' } }; });
  t.not(taken.status, 0);
  t.match(taken.stderr, /config.json \/linux\/netDevices\/pocnd2: move pocnd2 into the container as lo: .*(exists|File exists)/);
});

t.test('time namespace: offsets for boottime and monotonic', async (t) => {
  const r = inContainer('cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime', (s) => {
    s.linux!.namespaces!.push({ type: 'time' });
    s.linux!.timeOffsets = { boottime: { secs: 864000, nanosecs: 0 }, monotonic: { secs: 3600, nanosecs: 500 } };
  });
  t.equal(r.status, 0, r.stderr);
  const [mono, boot, uptime] = r.stdout.trim().split('\n');
  t.match(mono, /^monotonic\s+3600\s+500$/);
  t.match(boot, /^boottime\s+864000\s+0$/);
  const hostUptime = Number(readFileSync('/proc/uptime', 'utf8').split('.')[0]);
  t.ok(Number(uptime) >= hostUptime + 864000 - 5 && Number(uptime) <= hostUptime + 864000 + 60, `uptime ${uptime} is the host's ${hostUptime} + 10 days`);

  const plain = inContainer('cat /proc/self/timens_offsets; readlink /proc/self/ns/time', (s) => { s.linux!.namespaces!.push({ type: 'time' }); });
  t.match(plain.stdout, /^monotonic\s+0\s+0\nboottime\s+0\s+0\ntime:\[\d+\]\n$/);
  t.not(plain.stdout.split('\n')[2], readlinkSync('/proc/self/ns/time'), 'a namespace of its own');

  const none = inContainer('true', (s) => { s.linux!.timeOffsets = { boottime: { secs: 1 } }; });
  t.match(none.stderr, /config.json \/linux\/timeOffsets: time offsets need a time namespace/);
});

t.test('joining every namespace of a running container by path, including its user namespace', async (t) => {
  const A_ID = 200000;
  const a = makeBundle(work, (s) => {
    s.process!.args = ['sh', '-c', 'touch /dev/mqueue/from-a; echo ready > /tmp/ready; exec sleep 60'];
    s.hostname = 'box-a';
    userns(s, A_ID);
    s.linux!.namespaces!.push({ type: 'time' });
    s.linux!.timeOffsets = { boottime: { secs: 7777 } };
  });
  chownRootfs(a.rootfs, A_ID);
  const aId = `n${n++}`;
  rt.ok(['run', '-d', '--bundle', a.dir, aId]);
  t.teardown(() => void rt.run(['delete', '--force', aId]));
  for (let i = 0; i < 500 && spawnSync('test', ['-e', join(a.rootfs, 'tmp/ready')]).status !== 0; i++) spawnSync('sleep', ['0.01']);
  const pid = rt.state(aId).pid;
  const types = ['user', 'pid', 'net', 'ipc', 'uts', 'cgroup', 'time'];
  const configType: Record<string, string> = { net: 'network' };

  const r = inContainer(
    [
      ...types.map((ty) => `readlink /proc/self/ns/${ty}`),
      'hostname', 'cat /proc/1/cmdline | tr "\\0" " "; echo', 'ls /dev/mqueue', 'cat /proc/self/uid_map', 'grep boottime /proc/self/timens_offsets',
      'id -u', 'touch /made-by-b', 'echo done',
    ].join('; '),
    (s) => {
      delete s.hostname;
      s.linux!.namespaces = [
        { type: 'mount' },
        ...types.map((ty) => ({ type: (configType[ty] ?? ty) as 'pid', path: `/proc/${pid}/ns/${ty}` })),
      ];
    },
    (rootfs) => chownRootfs(rootfs, A_ID),
  );
  t.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  t.same(lines.slice(0, types.length), types.map((ty) => readlinkSync(`/proc/${pid}/ns/${ty}`)), 'the same namespaces as the running container');
  t.equal(lines[types.length], 'box-a', 'its hostname (UTS)');
  t.equal(lines[types.length + 1], 'sleep 60 ', 'its pid 1 (PID)');
  t.equal(lines[types.length + 2], 'from-a', 'its message queue (IPC)');
  t.match(lines[types.length + 3], /^\s*0\s+200000\s+65536$/, 'its uid map (user)');
  t.match(lines[types.length + 4], /^boottime\s+7777\s+0$/, 'its clock offsets (time)');
  t.equal(lines[types.length + 5], '0', 'root of the joined user namespace');
  t.equal(statSync(join(r.bundle.rootfs, 'made-by-b')).uid, A_ID, 'what it makes belongs to the mapped root');
  t.equal(lines[types.length + 6], 'done');
});

t.test('joining a mount namespace by path', async (t) => {
  // A mount namespace made on the host, with a tmpfs inside the future container's rootfs that only it has.
  const nsdir = join(work, 'nsdir');
  mkdirSync(nsdir);
  const sh = (cmd: string) => spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  t.equal(sh(`mount --bind ${nsdir} ${nsdir} && mount --make-private ${nsdir} && touch ${nsdir}/mnt`).status, 0);
  t.teardown(() => void sh(`umount ${nsdir}/mnt; umount ${nsdir}`));
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sh', '-c', 'cat /marker/file; grep -c " /marker " /proc/self/mounts'];
    s.linux!.namespaces = s.linux!.namespaces!.map((ns) => (ns.type === 'mount' ? { type: 'mount', path: `${nsdir}/mnt` } : ns));
  });
  mkdirSync(join(b.rootfs, 'marker'));
  const made = sh(`unshare --mount=${nsdir}/mnt --propagation private sh -c 'mount -t tmpfs marker ${b.rootfs}/marker && echo only-in-that-namespace > ${b.rootfs}/marker/file'`);
  t.equal(made.status, 0, made.stderr);
  t.equal(sh(`ls ${b.rootfs}/marker`).stdout, '', 'the host does not see it');
  const r = rt.run(['run', '--bundle', b.dir, `n${n++}`]);
  t.equal(r.stdout, 'only-in-that-namespace\n1\n', r.stderr);
});

t.test('nothing left behind', async (t) => residue(t));
