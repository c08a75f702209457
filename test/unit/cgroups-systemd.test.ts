import t from 'tap';
import { cpuSharesToWeight } from '../../src/cgroups/convert.js';
import { expandSlice, systemdUnitFor, unitOfCgroupPath } from '../../src/cgroups/systemd-unit.js';
import {
  UINT64_MAX,
  deviceProperties,
  encodeProperties,
  rangeToBits,
  resourceProperties,
  scopeProperties,
  type UnitProperty,
} from '../../src/cgroups/systemd-properties.js';

t.test('slices expand as systemd nests dashed names (runc ExpandSlice)', async (t) => {
  const cases: [string, string][] = [
    ['system.slice', '/system.slice'],
    ['-.slice', '/'],
    ['kubepods.slice', '/kubepods.slice'],
    ['kubepods-besteffort.slice', '/kubepods.slice/kubepods-besteffort.slice'],
    ['kubepods-besteffort-pod12.slice', '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice'],
    ['machine.slice', '/machine.slice'],
  ];
  for (const [slice, path] of cases) t.equal(expandSlice(slice), path, slice);
  for (const bad of ['system', '.slice', 'a--b.slice', '-a.slice', 'a-.slice', 'a/b.slice', 'kubepods.slice.x']) {
    t.throws(() => expandSlice(bad), { name: 'PocrunError', message: /^config.json \/linux\/cgroupsPath: .* is not a slice name/ }, bad);
  }
});

t.test('slice:prefix:name gives the scope prefix-name.scope in the slice; the default is pocrun-<id>.scope', async (t) => {
  const cases: [string | undefined, { slice: string; unit: string; cgroupPath: string }][] = [
    [undefined, { slice: 'system.slice', unit: 'pocrun-c1.scope', cgroupPath: '/system.slice/pocrun-c1.scope' }],
    ['', { slice: 'system.slice', unit: 'pocrun-c1.scope', cgroupPath: '/system.slice/pocrun-c1.scope' }],
    ['machine.slice:libpod:3f2a', { slice: 'machine.slice', unit: 'libpod-3f2a.scope', cgroupPath: '/machine.slice/libpod-3f2a.scope' }],
    [':docker:abc', { slice: 'system.slice', unit: 'docker-abc.scope', cgroupPath: '/system.slice/docker-abc.scope' }],
    [
      'kubepods-besteffort-pod12.slice:cri-containerd:abc',
      {
        slice: 'kubepods-besteffort-pod12.slice',
        unit: 'cri-containerd-abc.scope',
        cgroupPath: '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/cri-containerd-abc.scope',
      },
    ],
    ['-.slice:p:n', { slice: '-.slice', unit: 'p-n.scope', cgroupPath: '/p-n.scope' }],
  ];
  for (const [path, want] of cases) t.same(systemdUnitFor(path, 'c1'), want, String(path));
  t.same(
    systemdUnitFor(undefined, 'c1', 1000),
    { slice: 'user.slice', unit: 'pocrun-c1.scope', cgroupPath: '/user.slice/user-1000.slice/user@1000.service/user.slice/pocrun-c1.scope' },
    "rootless: user.slice, in the user's own manager (user@UID.service)",
  );
  t.equal(systemdUnitFor(':libpod:c1', 'c1', 1000).cgroupPath, '/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-c1.scope', "rootless podman's path");
});

t.test('a cgroupsPath not of the form slice:prefix:name is an error naming the field', async (t) => {
  const cases: [string, RegExp][] = [
    ['/pocrun/c1', /^config.json \/linux\/cgroupsPath: "\/pocrun\/c1" is not of the form "slice:prefix:name"/],
    ['a:b', /is not of the form "slice:prefix:name"/],
    ['a:b:c:d', /is not of the form "slice:prefix:name"/],
    ['system.slice:p:', /empty unit name/],
    ['system.slice:p:a/b', /cannot hold "\/"/],
    ['system:p:n', /"system" is not a slice name/],
    ['system.slice:p:x.slice', /the name is a slice/],
  ];
  for (const [path, message] of cases) t.throws(() => systemdUnitFor(path, 'c1'), { name: 'PocrunError', message }, path);
});

t.test('the unit and slice are found again from the recorded cgroup path', async (t) => {
  t.same(unitOfCgroupPath('/kubepods.slice/kubepods-burstable.slice/cri-containerd-x.scope'), { unit: 'cri-containerd-x.scope', slice: 'kubepods-burstable.slice' });
  t.same(unitOfCgroupPath('/p-n.scope'), { unit: 'p-n.scope', slice: '-.slice' });
  t.throws(() => unitOfCgroupPath('/pocrun/c1'), /not a systemd scope/);
});

t.test('the scope: Delegate, the helper pid, no default dependencies, accounting', async (t) => {
  const props = scopeProperties({ id: 'c1', slice: 'machine.slice', pid: 4242 });
  const by = Object.fromEntries(props.map((p) => [p.name, p.value]));
  t.same(by, {
    Description: 'pocrun container c1',
    Slice: 'machine.slice',
    PIDs: ['4242'],
    Delegate: true,
    MemoryAccounting: true,
    CPUAccounting: true,
    IOAccounting: true,
    TasksAccounting: true,
    DefaultDependencies: false,
  });
});

const byName = (props: UnitProperty[]) => Object.fromEntries(props.map((p) => [p.name, p.value]));

t.test('cgroup v2 resources as unit properties (runc genV2ResourcesProperties)', async (t) => {
  const props = resourceProperties(
    {
      memory: { limit: 256 << 20, reservation: 128 << 20, swap: 512 << 20 },
      cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '0-2,9', mems: '0' },
      pids: { limit: 100 },
      blockIO: { weight: 500 },
    },
    2,
  );
  t.same(byName(props), {
    MemoryMax: String(256 << 20),
    MemoryLow: String(128 << 20),
    MemorySwapMax: String(256 << 20),
    CPUWeight: String(cpuSharesToWeight(1024)), // the v2 driver's conversion, whichever formula it uses
    CPUQuotaPeriodUSec: '100000',
    CPUQuotaPerSecUSec: '500000',
    TasksMax: '100',
    AllowedCPUs: ['7', '2'],
    AllowedMemoryNodes: ['1'],
    IOWeight: '4950',
  });
  t.same(byName(resourceProperties({ memory: { limit: -1 }, pids: { limit: -1 } }, 2)), {
    MemoryMax: UINT64_MAX,
    MemorySwapMax: UINT64_MAX,
    TasksMax: UINT64_MAX,
  }, 'unlimited is UINT64_MAX; memory unlimited with swap unset is swap unlimited too');
  t.same(byName(resourceProperties({ pids: { limit: 0 }, memory: {} }, 2)), {}, 'unset (0) means no property');
});

t.test('cgroup v1 (best effort): MemoryLimit, CPUShares, BlockIOWeight, no cpuset properties', async (t) => {
  t.same(byName(resourceProperties({ memory: { limit: 1 << 20 }, cpu: { shares: 512, cpus: '0' }, blockIO: { weight: 300 } }, 1)), {
    MemoryLimit: String(1 << 20),
    CPUShares: '512',
    BlockIOWeight: '300',
  });
});

t.test('CPU quota: rounded up to whole percent per second; no quota with a period is infinity (runc addCpuQuota)', async (t) => {
  t.same(byName(resourceProperties({ cpu: { quota: 12345, period: 100000 } }, 2)), { CPUQuotaPeriodUSec: '100000', CPUQuotaPerSecUSec: '130000' });
  t.same(byName(resourceProperties({ cpu: { quota: 50000 } }, 2)), { CPUQuotaPerSecUSec: '500000' }, 'default period 100 ms');
  t.same(byName(resourceProperties({ cpu: { quota: -1, period: 50000 } }, 2)), { CPUQuotaPeriodUSec: '50000', CPUQuotaPerSecUSec: UINT64_MAX });
});

t.test('unified files systemd knows become properties; the others stay files', async (t) => {
  t.same(
    byName(resourceProperties({ unified: { 'memory.high': '1048576', 'pids.max': 'max', 'cpu.max': '25000 50000', 'io.latency': 'x', 'cpuset.cpus': '1' } }, 2)),
    { MemoryHigh: '1048576', TasksMax: UINT64_MAX, CPUQuotaPeriodUSec: '50000', CPUQuotaPerSecUSec: '500000', AllowedCPUs: ['2'] },
  );
  t.throws(() => resourceProperties({ unified: { 'memory.max': '1k' } }, 2), /\/linux\/resources\/unified\/memory.max: "1k" is not a number/);
});

t.test('CPU lists as systemd bit masks (CPU 0 in the lowest bit of the first byte)', async (t) => {
  t.same(rangeToBits('0', 'f'), ['1']);
  t.same(rangeToBits('0-7', 'f'), ['255']);
  t.same(rangeToBits('8', 'f'), ['0', '1']);
  t.same(rangeToBits('1,3, 10-11', 'f'), ['10', '12']);
  t.throws(() => rangeToBits('a-b', '/linux/resources/cpu/cpus'), /\/linux\/resources\/cpu\/cpus: "a-b" is not a list/);
});

t.test('device rules: an allow-list after "deny all" is strict, allow-all is auto, anything else is left to the filter', async (t) => {
  const deny = { allow: false, access: 'rwm' };
  t.same(byName(deviceProperties([
    deny,
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: true, type: 'c', major: 136, access: 'rw' },
    { allow: true, type: 'b', access: 'm' },
    { allow: true, type: 'a', major: 5, minor: 1, access: 'r' },
  ])), {
    DevicePolicy: 'strict',
    DeviceAllow: [['/dev/char/1:3', 'rwm'], ['char-136', 'rw'], ['block-*', 'm'], ['/dev/char/5:1', 'r'], ['/dev/block/5:1', 'r']],
  });
  t.same(byName(deviceProperties([deny])), { DevicePolicy: 'strict', DeviceAllow: [] }, 'deny all');
  const auto = { DevicePolicy: 'auto', DeviceAllow: [] };
  t.same(byName(deviceProperties([deny, { allow: true, access: 'rwm' }])), auto, 'allow all last');
  t.same(byName(deviceProperties([{ allow: true, type: 'c', major: 1, minor: 3 }, { allow: false, type: 'c', major: 1, minor: 5 }])), auto, 'no "all" rule');
  t.same(byName(deviceProperties([deny, { allow: true, type: 'c', major: 1 }, { allow: false, type: 'c', major: 1, minor: 5 }])), auto, 'a deny after an allow');
  t.same(byName(deviceProperties([deny, { allow: true, type: 'c', minor: 3 }])), auto, '"*:3" has no systemd name');
  t.same(deviceProperties(undefined), [], 'no rules, no properties');
});

t.test("pocrun-systemd's argument encoding", async (t) => {
  t.same(
    encodeProperties([
      { name: 'Delegate', sig: 'b', value: true },
      { name: 'Slice', sig: 's', value: 'x.slice' },
      { name: 'MemoryMax', sig: 't', value: UINT64_MAX },
      { name: 'PIDs', sig: 'au', value: ['7'] },
      { name: 'AllowedCPUs', sig: 'ay', value: ['1', '2'] },
      { name: 'DeviceAllow', sig: 'a(ss)', value: [['/dev/char/1:3', 'rwm'], ['char-*', 'm']] },
      { name: 'DeviceAllow', sig: 'a(ss)', value: [] },
    ]),
    [
      'Delegate', 'b', '1',
      'Slice', 's', 'x.slice',
      'MemoryMax', 't', UINT64_MAX,
      'PIDs', 'au', '1', '7',
      'AllowedCPUs', 'ay', '2', '1', '2',
      'DeviceAllow', 'a(ss)', '2', '/dev/char/1:3', 'rwm', 'char-*', 'm',
      'DeviceAllow', 'a(ss)', '0',
    ],
  );
});
