import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { writeTrace } from '../../src/cgroups/fs.js';
import type { LinuxResources } from '../../src/cgroups/resources.js';
import { CgroupV1Driver } from '../../src/cgroups/v1.js';

/** The files a v1 cgroup of each controller has (those the driver touches), as the kernel shows them. */
const FILES: Record<string, Record<string, string>> = {
  cpuset: { 'cpuset.cpus': '', 'cpuset.mems': '' },
  devices: { 'devices.allow': '', 'devices.deny': '', 'devices.list': 'a *:* rwm\n' },
  memory: {
    'memory.limit_in_bytes': '9223372036854771712\n',
    'memory.memsw.limit_in_bytes': '9223372036854771712\n',
    'memory.soft_limit_in_bytes': '9223372036854771712\n',
    'memory.kmem.tcp.limit_in_bytes': '9223372036854771712\n',
    'memory.swappiness': '60\n',
    'memory.oom_control': 'oom_kill_disable 0\n',
    'memory.use_hierarchy': '1\n',
  },
  cpu: {
    'cpu.shares': '1024\n',
    'cpu.cfs_quota_us': '-1\n',
    'cpu.cfs_period_us': '100000\n',
    'cpu.cfs_burst_us': '0\n',
    'cpu.rt_runtime_us': '0\n',
    'cpu.rt_period_us': '1000000\n',
    'cpu.idle': '0\n',
  },
  cpuacct: {},
  pids: { 'pids.max': 'max\n' },
  blkio: {
    'blkio.bfq.weight': '100\n',
    'blkio.bfq.weight_device': '',
    'blkio.throttle.read_bps_device': '',
    'blkio.throttle.write_bps_device': '',
    'blkio.throttle.read_iops_device': '',
    'blkio.throttle.write_iops_device': '',
  },
  freezer: { 'freezer.state': 'THAWED\n' },
};

function fixture(t: Test, leaf: Record<string, Record<string, unknown>> = {}) {
  const layout: Record<string, unknown> = {};
  for (const [c, files] of Object.entries(FILES)) {
    layout[c] = {
      'cgroup.procs': '',
      ...(c === 'cpuset' ? { 'cpuset.cpus': '0-3\n', 'cpuset.mems': '0\n' } : {}),
      pocrun: { ...files, 'cgroup.procs': '', c1: { ...files, 'cgroup.procs': '', ...leaf[c] } },
    };
  }
  const root = t.testdir(layout as Parameters<typeof t.testdir>[0]);
  const mounts = Object.fromEntries(Object.keys(FILES).map((c) => [c, `${root}/${c}`]));
  const read = (controller: string, file: string) => readFileSync(`${root}/${controller}/pocrun/c1/${file}`, 'utf8');
  return { root, read, mounts, driver: new CgroupV1Driver(root, mounts) };
}

t.test('create copies cpuset.cpus and .mems from the parent at every level', async (t) => {
  const { driver, root, read } = fixture(t);
  driver.create('/pocrun/c1');
  t.equal(readFileSync(`${root}/cpuset/pocrun/cpuset.cpus`, 'utf8'), '0-3');
  t.equal(read('cpuset', 'cpuset.cpus'), '0-3');
  t.equal(read('cpuset', 'cpuset.mems'), '0');
  driver.create('/pocrun/c1', { cpu: { cpus: '1', mems: '0' } });
  t.equal(read('cpuset', 'cpuset.cpus'), '1', 'configured cpus win');
});

t.test('create makes the cgroup in every hierarchy and removes it again on failure', async (t) => {
  const { driver, root, mounts } = fixture(t);
  t.throws(() => driver.create('/pocrun/c2', { pids: { limit: 5 } }), {
    message: 'cgroup /pocrun/c2: write cpuset.cpus=0-3: No such file or directory',
  });
  for (const c of Object.keys(mounts)) t.notOk(existsSync(`${root}/${c}/pocrun/c2`), `${c}: removed`);
  t.ok(existsSync(`${root}/memory/pocrun`), 'pre-existing parents stay');
  const noCpuset = new CgroupV1Driver(root, { pids: mounts.pids!, memory: mounts.memory! });
  noCpuset.create('/pocrun/c2');
  t.ok(existsSync(`${root}/pids/pocrun/c2`) && existsSync(`${root}/memory/pocrun/c2`));
  t.ok(noCpuset.exists('/pocrun/c2'));
});

t.test('resources are written to the v1 files', async (t) => {
  const cases: [string, LinuxResources, [string, string, string][]][] = [
    ['memory', { memory: { limit: 1048576, reservation: 524288, swap: 2097152, swappiness: 0, disableOOMKiller: true } }, [
      ['memory', 'memory.limit_in_bytes', '1048576'],
      ['memory', 'memory.memsw.limit_in_bytes', '2097152'],
      ['memory', 'memory.soft_limit_in_bytes', '524288'],
      ['memory', 'memory.swappiness', '0'],
      ['memory', 'memory.oom_control', '1'],
    ]],
    ['memory unlimited means swap unlimited', { memory: { limit: -1 } }, [
      ['memory', 'memory.limit_in_bytes', '-1'],
      ['memory', 'memory.memsw.limit_in_bytes', '-1'],
    ]],
    ['kernel ignored, kernelTCP written', { memory: { kernel: 1000, kernelTCP: 2000 } }, [
      ['memory', 'memory.kmem.tcp.limit_in_bytes', '2000'],
    ]],
    ['cpu', { cpu: { shares: 512, quota: 50000, period: 100000, burst: 1000, idle: 0 } }, [
      ['cpu', 'cpu.shares', '512'],
      ['cpu', 'cpu.cfs_quota_us', '50000'],
      ['cpu', 'cpu.cfs_period_us', '100000'],
      ['cpu', 'cpu.cfs_burst_us', '1000'],
      ['cpu', 'cpu.idle', '0'],
    ]],
    ['realtime', { cpu: { realtimeRuntime: 950000, realtimePeriod: 1000000 } }, [
      ['cpu', 'cpu.rt_runtime_us', '950000'],
      ['cpu', 'cpu.rt_period_us', '1000000'],
    ]],
    ['cpuset', { cpu: { cpus: '2-3', mems: '0' } }, [['cpuset', 'cpuset.cpus', '2-3'], ['cpuset', 'cpuset.mems', '0']]],
    ['pids', { pids: { limit: 0 } }, [['pids', 'pids.max', '0']]],
    ['pids unlimited', { pids: { limit: -1 } }, [['pids', 'pids.max', 'max']]],
    ['blkio (BFQ file names)', {
      blockIO: {
        weight: 500,
        weightDevice: [{ major: 8, minor: 0, weight: 300 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 600 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 300 }],
      },
    }, [
      ['blkio', 'blkio.bfq.weight', '500'],
      ['blkio', 'blkio.bfq.weight_device', '8:0 300'],
      ['blkio', 'blkio.throttle.read_bps_device', '8:0 600'],
      ['blkio', 'blkio.throttle.write_iops_device', '8:16 300'],
    ]],
  ];
  for (const [name, resources, want] of cases) {
    const { driver, read } = fixture(t);
    driver.apply('/pocrun/c1', resources);
    for (const [c, file, value] of want) t.equal(read(c, file), value, `${name}: ${file}`);
  }
});

t.test('memory and memsw are written in the order the kernel accepts', async (t) => {
  const cases: [string, string, LinuxResources, string[]][] = [
    ['growing: memsw first', '1000', { memory: { limit: 3000, swap: 6000 } },
      ['memory.memsw.limit_in_bytes=6000', 'memory.limit_in_bytes=3000']],
    ['shrinking: limit first', '9000', { memory: { limit: 1000, swap: 2000 } },
      ['memory.limit_in_bytes=1000', 'memory.memsw.limit_in_bytes=2000']],
    ['swap unlimited: memsw first', '9000', { memory: { limit: 1000, swap: -1 } },
      ['memory.memsw.limit_in_bytes=-1', 'memory.limit_in_bytes=1000']],
  ];
  for (const [name, current, resources, order] of cases) {
    const { driver } = fixture(t, { memory: { 'memory.limit_in_bytes': `${current}\n` } });
    writeTrace.writes = [];
    driver.apply('/pocrun/c1', resources);
    t.same(writeTrace.writes.map((w) => w.replace(/.*\//, '')), order, name);
  }
  writeTrace.writes = undefined;
});

t.test('devices: deny all, then the rules in order', async (t) => {
  const { driver } = fixture(t);
  writeTrace.writes = [];
  driver.apply('/pocrun/c1', {
    devices: [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 136, access: 'rwm' },
      { allow: false, type: 'c', major: 1, minor: 3, access: 'm' },
    ],
  });
  t.same(writeTrace.writes.map((w) => w.replace(/.*\//, '')), [
    'devices.deny=a',
    'devices.deny=a *:* rwm',
    'devices.allow=c 1:3 rwm',
    'devices.allow=c 136:* rwm',
    'devices.deny=c 1:3 m',
  ]);
  writeTrace.writes = undefined;
});

t.test('a resource whose controller is not mounted is an error naming it', async (t) => {
  const { driver } = fixture(t);
  const cases: [LinuxResources, string][] = [
    [{ network: { classID: 1048577 } }, 'cgroup /pocrun/c1: network.classID needs the net_cls controller, which is not mounted (cgroup v1)'],
    [{ network: { priorities: [{ name: 'eth0', priority: 5 }] } }, 'cgroup /pocrun/c1: network.priorities needs the net_prio controller, which is not mounted (cgroup v1)'],
    [{ hugepageLimits: [{ pageSize: '2MB', limit: 1 }] }, 'cgroup /pocrun/c1: hugepageLimits needs the hugetlb controller, which is not mounted (cgroup v1)'],
    [{ rdma: { mlx5_1: { hcaHandles: 3 } } }, 'cgroup /pocrun/c1: rdma needs the rdma controller, which is not mounted (cgroup v1)'],
    [{ unified: { 'memory.high': '1000' } }, 'cgroup /pocrun/c1: unified resources need cgroup v2 (this host uses cgroup v1)'],
  ];
  for (const [resources, message] of cases) {
    writeTrace.writes = [];
    t.throws(() => driver.apply('/pocrun/c1', { pids: { limit: 1 }, ...resources }), { name: 'PocrunError', message });
    t.same(writeTrace.writes, [], 'nothing written');
  }
  writeTrace.writes = undefined;
  const memOnly = new CgroupV1Driver('/x', { memory: '/nonexistent' });
  t.throws(() => memOnly.apply('/c', { cpu: { shares: 2 } }), /cpu.shares needs the cpu controller/);
  t.throws(() => memOnly.apply('/c', { pids: { limit: 2 } }), /pids.limit needs the pids controller/);
  memOnly.apply('/c', { unified: {}, memory: { checkBeforeUpdate: true }, cpu: {}, blockIO: {}, hugepageLimits: [] });
  t.pass('empty resources need no controller');
});

t.test('invalid values are refused', async (t) => {
  const { driver } = fixture(t);
  t.throws(() => driver.apply('/pocrun/c1', { memory: { swappiness: 101 } }), /memory.swappiness 101 is not in 0..100/);
  t.throws(() => driver.apply('/pocrun/c1', { cpu: { quota: 1000, burst: 2000 } }), /cpu.burst 2000 is larger than cpu.quota 1000/);
  t.throws(() => driver.apply('/pocrun/c1', { devices: [{ allow: true, type: 'q' }] }), /devices\/0: type "q"/);
  t.throws(() => driver.apply('/pocrun/c1', { memory: { limit: 1.5 } }), /memory.limit: 1.5 is not an integer/);
});

t.test('procs files: one per hierarchy, co-mounted controllers once', async (t) => {
  const d = new CgroupV1Driver('/sys/fs/cgroup', {
    cpu: '/sys/fs/cgroup/cpu,cpuacct',
    cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
    memory: '/sys/fs/cgroup/memory',
    freezer: '/sys/fs/cgroup/freezer',
  });
  t.same(d.procsFiles('/pocrun/c1'), [
    '/sys/fs/cgroup/memory/pocrun/c1/cgroup.procs',
    '/sys/fs/cgroup/cpu,cpuacct/pocrun/c1/cgroup.procs',
    '/sys/fs/cgroup/freezer/pocrun/c1/cgroup.procs',
  ]);
});

t.test('pids: the union over hierarchies', async (t) => {
  const { driver } = fixture(t, { memory: { 'cgroup.procs': '10\n11\n' }, pids: { 'cgroup.procs': '11\n12\n', sub: { 'cgroup.procs': '13\n' } } });
  t.same(driver.pids('/pocrun/c1'), [10, 11, 12, 13]);
});

t.test('freeze, thaw and state through freezer.state', async (t) => {
  const { driver, read, root } = fixture(t);
  t.equal(driver.state('/pocrun/c1'), 'thawed');
  driver.freeze('/pocrun/c1');
  t.equal(read('freezer', 'freezer.state'), 'FROZEN');
  t.equal(driver.state('/pocrun/c1'), 'frozen');
  driver.thaw('/pocrun/c1');
  t.equal(driver.state('/pocrun/c1'), 'thawed');
  // As runc: FROZEN through an ancestor alone (freezer.self_freezing 0) is not paused; without the file it is.
  writeFileSync(`${root}/freezer/pocrun/c1/freezer.state`, 'FROZEN\n');
  writeFileSync(`${root}/freezer/pocrun/c1/freezer.self_freezing`, '0\n');
  t.equal(driver.state('/pocrun/c1'), 'thawed', 'frozen by an ancestor');
  writeFileSync(`${root}/freezer/pocrun/c1/freezer.self_freezing`, '1\n');
  t.equal(driver.state('/pocrun/c1'), 'frozen', 'frozen itself');
  const noFreezer = new CgroupV1Driver('/x', { memory: '/nonexistent' });
  t.equal(noFreezer.state('/c'), 'thawed');
  noFreezer.thaw('/c');
  t.throws(() => noFreezer.freeze('/c'), /freeze needs the freezer controller, which is not mounted/);
});

t.test('killAll freezes, signals every process, thaws', async (t) => {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const { driver, read } = fixture(t, { freezer: { 'cgroup.procs': `${child.pid}\n` } });
  writeTrace.writes = [];
  driver.killAll('/pocrun/c1', 'SIGTERM');
  const writes = writeTrace.writes.map((w) => w.replace(/.*\//, ''));
  writeTrace.writes = undefined;
  t.equal(await exited, 'SIGTERM');
  t.same(writes, ['freezer.state=FROZEN', 'freezer.state=THAWED']);
  t.equal(read('freezer', 'freezer.state'), 'THAWED');
});

t.test('stats in the shape of runc events --stats', async (t) => {
  const { driver } = fixture(t, {
    cpuacct: {
      'cpuacct.usage': '3000\n',
      'cpuacct.usage_percpu': '1000 2000 \n',
      'cpuacct.usage_percpu_sys': '100 200 \n',
      'cpuacct.usage_percpu_user': '900 1800 \n',
      'cpuacct.stat': 'user 3\nsystem 1\n',
    },
    cpu: { 'cpu.stat': 'nr_periods 4\nnr_throttled 1\nthrottled_time 500\n' },
    memory: {
      'memory.stat': 'cache 4096\nrss 8192\n',
      'memory.usage_in_bytes': '12288\n',
      'memory.max_usage_in_bytes': '16384\n',
      'memory.limit_in_bytes': '1048576\n',
      'memory.failcnt': '2\n',
    },
    pids: { 'pids.current': '1\n', 'pids.max': '32\n' },
    blkio: { 'blkio.bfq.io_serviced_recursive': '8:0 Read 2\n8:0 Write 0\nTotal 2\n', 'blkio.bfq.io_service_bytes_recursive': '8:0 Read 8192\nTotal 8192\n' },
    cpuset: { 'cpuset.cpus': '0-1\n', 'cpuset.mems': '0\n', 'cpuset.sched_load_balance': '1\n' },
  });
  const s = driver.stats('/pocrun/c1');
  t.same(s.cpu, {
    usage: { total: 3000, percpu: [1000, 2000], percpu_kernel: [100, 200], percpu_user: [900, 1800], kernel: 10000000, user: 30000000 },
    throttling: { periods: 4, throttledPeriods: 1, throttledTime: 500 },
  });
  t.same(s.memory.usage, { limit: 1048576, usage: 12288, max: 16384, failcnt: 2 });
  t.equal(s.memory.cache, 4096);
  t.same(s.memory.raw, { cache: 4096, rss: 8192 });
  t.same(s.pids, { current: 1, limit: 32 });
  t.same(s.blkio, {
    ioServiceBytesRecursive: [{ major: 8, op: 'Read', value: 8192 }],
    ioServicedRecursive: [{ major: 8, op: 'Read', value: 2 }, { major: 8, op: 'Write' }],
  });
  t.same(s.cpuset.cpus, [0, 1]);
  t.equal(s.cpuset.sched_load_balance, 1);
  t.equal(s.cpuset.cpu_exclusive, 0);
  t.same(Object.keys(s), ['cpu', 'cpuset', 'memory', 'pids', 'blkio', 'hugetlb', 'intel_rdt', 'network_interfaces']);
});

t.test('destroy removes the cgroup from every hierarchy', async (t) => {
  const root = t.testdir({ memory: { pocrun: { c1: { sub: {} } } }, pids: { pocrun: { c1: {} } }, freezer: { pocrun: {} } });
  const d = new CgroupV1Driver(root, { memory: `${root}/memory`, pids: `${root}/pids`, freezer: `${root}/freezer` });
  t.ok(d.exists('/pocrun/c1'));
  d.destroy('/pocrun/c1');
  t.notOk(d.exists('/pocrun/c1'));
  t.ok(existsSync(`${root}/memory/pocrun`));
  d.destroy('/pocrun/c1');
  writeFileSync(`${root}/pids/pocrun/f`, '');
  t.throws(() => d.destroy('/pocrun'), /cgroup \/pocrun: rmdir .*\/pids\/pocrun: Directory not empty/);
  t.notOk(existsSync(`${root}/memory/pocrun`), 'the other hierarchies are still cleaned');
});
