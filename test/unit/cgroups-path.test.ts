import { mkdirSync, writeFileSync } from 'node:fs';
import t from 'tap';
import {
  CgroupV1Driver,
  CgroupV2Driver,
  checkCgroupPath,
  detectCgroups,
  parseCgroupMounts,
  readOwnCgroup,
  resolveCgroupPath,
  v1MountsFrom,
} from '../../src/cgroups/index.js';
import { cgroupDirsOf } from '../../src/common/cgroup-mounts.js';

t.test('cgroupsPath resolution', async (t) => {
  const own = () => '/user.slice/session-1.scope';
  const cases: [string | undefined, string][] = [
    [undefined, '/pocrun/c1'],
    ['', '/pocrun/c1'],
    ['/kubepods/pod1/c1', '/kubepods/pod1/c1'],
    ['/a//b/./c/', '/a/b/c'],
    ['machine/c1', '/user.slice/session-1.scope/machine/c1'],
  ];
  for (const [given, want] of cases) t.equal(resolveCgroupPath(given, 'c1', own), want, String(given));
  t.equal(resolveCgroupPath('rel', 'c1', () => '/'), '/rel', 'relative to the root cgroup');
});

t.test('cgroupsPath with .. or naming the root is refused', async (t) => {
  for (const bad of ['/a/../b', '../x', 'a/..', '/..']) {
    t.throws(() => resolveCgroupPath(bad, 'c1', () => '/'), { name: 'PocrunError', message: /".." components are not allowed/ }, bad);
  }
  t.throws(() => resolveCgroupPath('/', 'c1'), /the root cgroup cannot be a container's/);
  t.throws(() => resolveCgroupPath(undefined, 'a/b'), /container id/);
  t.throws(() => checkCgroupPath('relative'), /not absolute/);
  t.throws(() => checkCgroupPath('/x/../../etc'), /".."/);
  t.equal(checkCgroupPath('/x//y/'), '/x/y');
});

t.test("the runtime's own cgroup: unified entry, else name=systemd, else the first", async (t) => {
  t.equal(readOwnCgroup('4:memory:/a/b\n1:cpu:/\n0::/user.slice\n'), '/user.slice');
  t.equal(readOwnCgroup('2:memory:/m\n1:name=systemd:/system.slice/x.service\n'), '/system.slice/x.service');
  t.equal(readOwnCgroup('3:cpu,cpuacct:/c\n'), '/c');
  t.equal(readOwnCgroup('0::/\n'), '/');
});

const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const COMBINED = `25 20 0:22 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
26 20 0:23 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:10 - cgroup cgroup rw,net_cls,net_prio
27 20 0:24 / /sys/fs/cgroup/pids rw,nosuid shared:11 - cgroup cgroup rw,pids
`;

t.test('v1 mounts are read from mountinfo (separate and combined)', async (t) => {
  const hybrid = parseCgroupMounts(HYBRID);
  t.same(hybrid.map((m) => m.fstype), ['cgroup', 'cgroup', 'cgroup', 'cgroup', 'cgroup2']);
  t.same(v1MountsFrom(hybrid, '/sys/fs/cgroup'), {
    cpu: '/sys/fs/cgroup/cpu',
    cpuacct: '/sys/fs/cgroup/cpuacct',
    memory: '/sys/fs/cgroup/memory',
  });
  t.same(v1MountsFrom(parseCgroupMounts(COMBINED), '/sys/fs/cgroup'), {
    cpu: '/sys/fs/cgroup/cpu,cpuacct',
    cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
    net_cls: '/sys/fs/cgroup/net_cls,net_prio',
    net_prio: '/sys/fs/cgroup/net_cls,net_prio',
    pids: '/sys/fs/cgroup/pids',
  });
  t.same(parseCgroupMounts('1 2 0:1 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids')[0]!.mountpoint, '/sys/fs/cgroup/with space');
});

t.test('detection: v2 when the root is a cgroup2 hierarchy, v1 otherwise', async (t) => {
  const dir = t.testdir({ v2: { 'cgroup.controllers': 'cpu memory pids\n' }, hybrid: { unified: {} }, mountinfo: HYBRID, empty: '' });
  const v2 = detectCgroups(`${dir}/v2`, `${dir}/mountinfo`);
  t.ok(v2 instanceof CgroupV2Driver);
  t.equal(v2.version, 2);
  const v1 = detectCgroups(`${dir}/hybrid`, `${dir}/mountinfo`);
  t.ok(v1 instanceof CgroupV1Driver);
  t.equal(v1.version, 1);
  t.same((v1 as CgroupV1Driver).hierarchies(), ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct']);
  t.throws(() => detectCgroups(`${dir}/hybrid`, `${dir}/empty`), /neither a cgroup v2 hierarchy/);
  mkdirSync(`${dir}/x`);
  writeFileSync(`${dir}/x/cgroup.controllers`, '');
  t.equal(detectCgroups(`${dir}/x/`, `${dir}/empty`).version, 2, 'trailing slash');
  // The same fact for rootless poc's check of a --cgroup-parent: the directories the driver would make it in.
  t.same(cgroupDirsOf('/deleg', `${dir}/hybrid`, `${dir}/mountinfo`).sort(), Object.values(v1.dirs('/deleg')).sort(), 'v1: each hierarchy the driver uses');
  t.same(cgroupDirsOf('/deleg', `${dir}/v2`, `${dir}/mountinfo`), [`${dir}/v2/deleg`], 'v2: the one');
  t.same(cgroupDirsOf('/deleg', `${dir}/hybrid`, `${dir}/empty`), [], 'no hierarchy: none');
});
