import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { CgroupV2Driver } from '../../src/cgroups/v2.js';
import { CgroupV1Driver } from '../../src/cgroups/index.js';
import { hostCgroupFacts, kernelHasCloneIntoCgroup } from '../../src/cgroups/host-facts.js';
import { writeTrace } from '../../src/cgroups/fs.js';
import { deviceFilter } from '../../src/cgroups/device-filter.js';
import type { LinuxDeviceCgroup, LinuxResources } from '../../src/cgroups/resources.js';

const CONTROLLERS = 'cpuset cpu io memory hugetlb pids rdma\n';

/** A cgroup directory as the kernel would show it: the interface files exist, empty or with defaults. */
function cgroupFiles(extra: Record<string, string> = {}): Record<string, string> {
  return {
    'cgroup.controllers': CONTROLLERS,
    'cgroup.subtree_control': '',
    'cgroup.procs': '',
    'cgroup.freeze': '0\n',
    'cgroup.events': 'populated 0\nfrozen 0\n',
    'memory.max': 'max\n',
    'memory.swap.max': 'max\n',
    'memory.low': '0\n',
    'memory.current': '0\n',
    'cpu.weight': '100\n',
    'cpu.max': 'max 100000\n',
    'cpu.max.burst': '0\n',
    'cpu.idle': '0\n',
    'cpuset.cpus': '',
    'cpuset.mems': '',
    'pids.max': 'max\n',
    'io.weight': 'default 100\n',
    'io.max': '',
    'hugetlb.2MB.max': 'max\n',
    'rdma.max': '',
    ...extra,
  };
}

/** root (cgroup2 mount) → pocrun → c1, laid out like cgroupfs. */
function fixture(t: Test, leaf: Record<string, string> = {}) {
  const root = t.testdir({
    'cgroup.controllers': CONTROLLERS,
    'cgroup.subtree_control': '',
    pocrun: { 'cgroup.controllers': CONTROLLERS, 'cgroup.subtree_control': 'cpu\n', c1: cgroupFiles(leaf) },
  });
  const read = (file: string) => readFileSync(`${root}/pocrun/c1/${file}`, 'utf8');
  return { root, read, driver: new CgroupV2Driver(root, { freezeTimeoutMs: 30 }) };
}

t.test('resources are converted and written to the v2 files', async (t) => {
  const cases: [string, LinuxResources, Record<string, string>][] = [
    ['memory limit, reservation, swap', { memory: { limit: 1048576, reservation: 524288, swap: 3145728 } },
      { 'memory.max': '1048576', 'memory.low': '524288', 'memory.swap.max': '2097152' }],
    ['memory and swap equal: no swap', { memory: { limit: 1000, swap: 1000 } }, { 'memory.max': '1000', 'memory.swap.max': '0' }],
    ['memory unlimited', { memory: { limit: -1 } }, { 'memory.max': 'max', 'memory.swap.max': 'max' }],
    ['kernel memory ignored', { memory: { kernel: 1000, kernelTCP: 1000 } }, {}],
    ['cpu shares, quota, period', { cpu: { shares: 1024, quota: 50000, period: 100000 } },
      { 'cpu.weight': '100', 'cpu.max': '50000 100000' }],
    ['cpu quota alone', { cpu: { quota: 20000 } }, { 'cpu.max': '20000' }],
    ['cpu period alone keeps the quota', { cpu: { period: 50000 } }, { 'cpu.max': 'max 50000' }],
    ['cpu burst and idle', { cpu: { quota: 50000, burst: 10000, idle: 0 } },
      { 'cpu.max.burst': '10000', 'cpu.idle': '0', 'cpu.max': '50000' }],
    ['cpuset', { cpu: { cpus: '0-1', mems: '0' } }, { 'cpuset.cpus': '0-1', 'cpuset.mems': '0' }],
    ['pids', { pids: { limit: 32 } }, { 'pids.max': '32' }],
    ['pids 0 is a limit', { pids: { limit: 0 } }, { 'pids.max': '0' }],
    ['pids unlimited', { pids: { limit: -1 } }, { 'pids.max': 'max' }],
    ['io weight', { blockIO: { weight: 500 } }, { 'io.weight': '4950' }],
    ['io weight per device', { blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 10 }] } }, { 'io.weight': '8:0 1' }],
    ['io throttle', { blockIO: { throttleWriteIOPSDevice: [{ major: 8, minor: 16, rate: 300 }] } }, { 'io.max': '8:16 wiops=300' }],
    ['io throttle 0 is no limit', { blockIO: { throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 0 }] } }, { 'io.max': '8:0 rbps=max' }],
    ['hugetlb', { hugepageLimits: [{ pageSize: '2MB', limit: 209715200 }] }, { 'hugetlb.2MB.max': '209715200' }],
    ['rdma', { rdma: { mlx5_1: { hcaHandles: 3, hcaObjects: 10000 } } }, { 'rdma.max': 'mlx5_1 hca_handle=3 hca_object=10000' }],
    ['unified, written last', { pids: { limit: 5 }, unified: { 'pids.max': '7', 'memory.low': '4096' } },
      { 'pids.max': '7', 'memory.low': '4096' }],
  ];
  for (const [name, resources, want] of cases) {
    const { driver, read } = fixture(t);
    driver.apply('/pocrun/c1', resources);
    for (const [file, value] of Object.entries(want)) t.equal(read(file), value, `${name}: ${file}`);
  }
});

t.test('device rules become a device filter: the eBPF program and the cgroup directory it is for', async (t) => {
  const { driver, root } = fixture(t);
  const rules: LinuxDeviceCgroup[] = [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }];
  t.same(driver.deviceFilter('/pocrun/c1', rules), { dir: `${root}/pocrun/c1`, insns: deviceFilter(rules) });
  t.throws(() => driver.deviceFilter('/pocrun/c1', [{ allow: true, type: 'x' }]), {
    message: 'cgroup /pocrun/c1: linux.resources.devices/0/type: "x" is not a, b or c',
  });
});

t.test('io.bfq.weight takes the v1 weight as it is', async (t) => {
  const { driver, read } = fixture(t, { 'io.bfq.weight': 'default 100\n' });
  driver.apply('/pocrun/c1', { blockIO: { weight: 500 } });
  t.equal(read('io.bfq.weight'), '500');
  t.equal(read('io.weight'), 'default 100\n');
});

t.test('what cgroup v2 cannot do is refused before anything is written', async (t) => {
  const cases: [LinuxResources, RegExp][] = [
    [{ devices: [{ allow: false, access: 'rwm' }] }, /^cgroup \/pocrun\/c1: linux.resources.devices: on cgroup v2 the device rules go through deviceFilter/],
    [{ network: { classID: 1 } }, /^config.json \/linux\/resources\/network\/classID: the net_cls controller exists only on cgroup v1 \(cgroup \/pocrun\/c1\)$/],
    [{ network: { priorities: [{ name: 'eth0', priority: 1 }] } }, /^config.json \/linux\/resources\/network\/priorities: the net_prio/],
    [{ cpu: { realtimeRuntime: 950000 } }, /^config.json \/linux\/resources\/cpu\/realtimeRuntime: realtime group scheduling/],
    [{ cpu: { realtimePeriod: 1000000 } }, /^config.json \/linux\/resources\/cpu\/realtimePeriod: realtime group scheduling/],
    [{ memory: { swappiness: 10 } }, /^config.json \/linux\/resources\/memory\/swappiness: cgroup v2 has no per-cgroup swappiness/],
    [{ memory: { disableOOMKiller: true } }, /^config.json \/linux\/resources\/memory\/disableOOMKiller: /],
    [{ memory: { useHierarchy: false } }, /^config.json \/linux\/resources\/memory\/useHierarchy: /],
    [{ blockIO: { leafWeight: 10 } }, /^config.json \/linux\/resources\/blockIO\/leafWeight: cgroup v2 has no leaf weight/],
    [{ blockIO: { weightDevice: [{ major: 8, minor: 0, weight: 10 }, { major: 8, minor: 1, leafWeight: 10 }] } },
      /^config.json \/linux\/resources\/blockIO\/weightDevice\/1\/leafWeight: /],
    [{ memory: { limit: 2000, swap: 1000 } }, /^config.json \/linux\/resources\/memory\/swap: memory.swap: 1000 is below memory.limit 2000/],
    [{ cpu: { quota: 1000, burst: 2000 } }, /^config.json \/linux\/resources\/cpu\/burst: 2000 is larger than \/cpu\/quota 1000/],
    [{ unified: { '../memory.max': '1' } }, /^config.json \/linux\/resources\/unified\/..~1memory.max: "..\/memory.max" is not a cgroup file name/],
  ];
  for (const [resources, message] of cases) {
    const { driver } = fixture(t);
    writeTrace.writes = [];
    t.throws(() => driver.apply('/pocrun/c1', { pids: { limit: 1 }, ...resources }), { name: 'PocrunError', message }, String(message));
    t.same(writeTrace.writes, [], 'no write');
  }
  writeTrace.writes = undefined;
});

t.test('a write failure names the config field, the cgroup, the file, the value and the errno', async (t) => {
  // A directory in place of the file: the open fails with EISDIR, as a refused value fails with EINVAL.
  const cases: [string, LinuxResources, string][] = [
    ['memory.max', { memory: { limit: 1000 } }, 'config.json /linux/resources/memory/limit: cgroup /pocrun/c1: write memory.max=1000: Is a directory'],
    ['memory.swap.max', { memory: { limit: 1000, swap: 3000 } }, 'config.json /linux/resources/memory/swap: cgroup /pocrun/c1: write memory.swap.max=2000: Is a directory'],
    ['memory.low', { memory: { reservation: 1000 } }, 'config.json /linux/resources/memory/reservation: cgroup /pocrun/c1: write memory.low=1000: Is a directory'],
    ['cpu.weight', { cpu: { shares: 1024 } }, 'config.json /linux/resources/cpu/shares: cgroup /pocrun/c1: write cpu.weight=100: Is a directory'],
    ['cpu.idle', { cpu: { idle: 1 } }, 'config.json /linux/resources/cpu/idle: cgroup /pocrun/c1: write cpu.idle=1: Is a directory'],
    ['cpuset.cpus', { cpu: { cpus: '0' } }, 'config.json /linux/resources/cpu/cpus: cgroup /pocrun/c1: write cpuset.cpus=0: Is a directory'],
    ['cpuset.mems', { cpu: { mems: '0' } }, 'config.json /linux/resources/cpu/mems: cgroup /pocrun/c1: write cpuset.mems=0: Is a directory'],
    ['pids.max', { pids: { limit: 3 } }, 'config.json /linux/resources/pids/limit: cgroup /pocrun/c1: write pids.max=3: Is a directory'],
    ['io.weight', { blockIO: { weightDevice: [{ major: 8, minor: 0 }, { major: 8, minor: 1, weight: 10 }] } },
      'config.json /linux/resources/blockIO/weightDevice/1: cgroup /pocrun/c1: write io.weight=8:1 1: Is a directory'],
    ['io.max', { blockIO: { throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 5 }] } },
      'config.json /linux/resources/blockIO/throttleReadIOPSDevice/0: cgroup /pocrun/c1: write io.max=8:0 riops=5: Is a directory'],
    ['hugetlb.2MB.max', { hugepageLimits: [{ pageSize: '2MB', limit: 4096 }] },
      'config.json /linux/resources/hugepageLimits/0: cgroup /pocrun/c1: write hugetlb.2MB.max=4096: Is a directory'],
    ['rdma.max', { rdma: { 'mlx/0': { hcaHandles: 1 } } }, 'config.json /linux/resources/rdma/mlx~10: cgroup /pocrun/c1: write rdma.max=mlx/0 hca_handle=1: Is a directory'],
    ['memory.high', { unified: { 'memory.high': '1' } }, 'config.json /linux/resources/unified/memory.high: cgroup /pocrun/c1: write memory.high=1: Is a directory'],
  ];
  for (const [file, resources, message] of cases) {
    const { driver, root } = fixture(t);
    const leaf = `${root}/pocrun/c1`;
    rmSync(`${leaf}/${file}`, { force: true });
    mkdirSync(`${leaf}/${file}`);
    t.throws(() => driver.apply('/pocrun/c1', resources), { message }, file);
  }
  const { driver, root } = fixture(t);
  rmSync(`${root}/pocrun/c1/pids.max`);
  mkdirSync(`${root}/pocrun/c1/pids.max`);
  t.throws(() => driver.apply('/pocrun/c1', { pids: { limit: 3 } }, 'update'), {
    message: 'update /linux/resources/pids/limit: cgroup /pocrun/c1: write pids.max=3: Is a directory',
  }, 'update names itself as the source');
});

t.test('a file of a controller that is not enabled is reported as such', async (t) => {
  const { driver, root } = fixture(t);
  writeFileSync(`${root}/pocrun/c1/cgroup.controllers`, 'cpu pids\n');
  t.throws(() => driver.apply('/pocrun/c1', { unified: { 'misc.max': 'x 1' } }), {
    message: /^config.json \/linux\/resources\/unified\/misc.max: cgroup \/pocrun\/c1: write misc.max=x 1: No such file or directory \(the misc controller is not enabled for this cgroup; its cgroup.controllers: cpu pids\)$/,
  });
  t.throws(() => driver.apply('/pocrun/c1', { unified: { 'cpu.nosuchfile': '1' } }), {
    message: 'config.json /linux/resources/unified/cpu.nosuchfile: cgroup /pocrun/c1: write cpu.nosuchfile=1: No such file or directory',
  });
});

t.test('checkBeforeUpdate refuses a limit below the usage', async (t) => {
  const { driver, read } = fixture(t, { 'memory.current': '5000\n' });
  t.throws(() => driver.apply('/pocrun/c1', { memory: { limit: 1000, checkBeforeUpdate: true } }), {
    message: /^config.json \/linux\/resources\/memory\/limit: 1000 is below the current usage \(5000 bytes\)/,
  });
  t.equal(read('memory.max'), 'max\n');
  driver.apply('/pocrun/c1', { memory: { limit: 1000 } });
  t.equal(read('memory.max'), '1000', 'without the check the limit is written');
});

t.test('create enables controllers in the ancestors, makes missing directories, applies', async (t) => {
  const { driver, root, read } = fixture(t);
  driver.create('/pocrun/c1', { pids: { limit: 10 } });
  t.equal(readFileSync(`${root}/cgroup.subtree_control`, 'utf8'), '+cpuset +cpu +io +memory +hugetlb +pids +rdma');
  t.equal(readFileSync(`${root}/pocrun/cgroup.subtree_control`, 'utf8'), '+cpuset +io +memory +hugetlb +pids +rdma',
    'only the controllers not enabled yet');
  t.equal(read('cgroup.subtree_control'), '', 'not in the leaf');
  t.equal(read('pids.max'), '10');

  driver.create('/pocrun/c2');
  t.ok(driver.exists('/pocrun/c2'), 'made');
  t.throws(() => driver.create('/pocrun/c3/sub', { memory: { limit: 1000 } }), /the memory controller is not enabled/);
  t.notOk(existsSync(`${root}/pocrun/c3`), 'directories made by a failed create are removed');
  t.ok(existsSync(`${root}/pocrun`), 'directories that were there stay');
});

t.test('procs files and pids (recursive)', async (t) => {
  const { driver, root } = fixture(t, { 'cgroup.procs': '12\n13\n' });
  mkdirSync(`${root}/pocrun/c1/sub`);
  writeFileSync(`${root}/pocrun/c1/sub/cgroup.procs`, '14\n');
  t.same(driver.procsFiles('/pocrun/c1'), [`${root}/pocrun/c1/cgroup.procs`]);
  t.same(driver.pids('/pocrun/c1'), [12, 13, 14]);
  t.same(driver.pids('/pocrun/none'), []);
});

t.test('freeze, thaw and state follow cgroup.freeze and cgroup.events', async (t) => {
  const { driver, root, read } = fixture(t);
  const events = (frozen: number) => writeFileSync(`${root}/pocrun/c1/cgroup.events`, `populated 1\nfrozen ${frozen}\n`);
  t.equal(driver.state('/pocrun/c1'), 'thawed');
  t.throws(() => driver.freeze('/pocrun/c1'), /not frozen after 30 ms; thawed again/);
  t.equal(read('cgroup.freeze'), '0', 'thawed again after the timeout');
  events(1);
  driver.freeze('/pocrun/c1');
  t.equal(read('cgroup.freeze'), '1');
  t.equal(driver.state('/pocrun/c1'), 'frozen');
  events(0);
  t.equal(driver.state('/pocrun/c1'), 'freezing', 'asked to freeze, not frozen yet');
  driver.thaw('/pocrun/c1');
  t.equal(read('cgroup.freeze'), '0');
  t.equal(driver.state('/pocrun/c1'), 'thawed');
  events(1);
  t.equal(driver.state('/pocrun/c1'), 'thawed', 'frozen only through an ancestor is not paused (as runc)');
  events(0);
  t.equal(driver.state('/pocrun/none'), 'thawed', 'a missing cgroup is not frozen');
  driver.thaw('/pocrun/none');
});

t.test('thaw of a cgroup that goes meanwhile (systemd removes an emptied scope) is not an error; a failed write is', async (t) => {
  const { driver, root } = fixture(t);
  const failingWrite = (remove: boolean) => () => {
    if (remove) rmSync(`${root}/pocrun/c1`, { recursive: true });
    throw new Error('cgroup /pocrun/c1: write cgroup.freeze=0: No such file or directory');
  };
  const patched = driver as unknown as { write: () => void };
  patched.write = failingWrite(false);
  t.throws(() => driver.thaw('/pocrun/c1'), /write cgroup\.freeze=0/, 'the cgroup is still there: the error stands');
  patched.write = failingWrite(true);
  t.doesNotThrow(() => driver.thaw('/pocrun/c1'), 'gone between the check and the write: nothing to thaw');
});

t.test('a SIGKILL through cgroup.kill of a cgroup being removed (ENODEV) is not an error; another failure is', async (t) => {
  const { driver } = fixture(t, { 'cgroup.kill': '' });
  const failingWrite = (code: string) => () => {
    throw new Error('cgroup /pocrun/c1: write cgroup.kill=1: failed', { cause: Object.assign(new Error(code), { code }) });
  };
  const patched = driver as unknown as { write: () => void };
  patched.write = failingWrite('EACCES');
  t.throws(() => driver.killAll('/pocrun/c1', 'SIGKILL'), /write cgroup\.kill=1/, 'EACCES: the error stands');
  patched.write = failingWrite('ENODEV');
  t.doesNotThrow(() => driver.killAll('/pocrun/c1', 'SIGKILL'), 'ENODEV: the kernel is removing it (its directory still seen): nothing to kill');
});

t.test('stats in the shape of runc events --stats', async (t) => {
  const { driver } = fixture(t, {
    'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 30\n',
    'memory.current': '4096\n',
    'memory.max': '1048576\n',
    'memory.peak': '8192\n',
    'memory.events': 'low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n',
    'memory.stat': 'anon 1024\nfile 2048\n',
    'memory.swap.current': '100\n',
    'memory.swap.max': 'max\n',
    'pids.current': '2\n',
    'pids.max': '32\n',
    'io.stat': '8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
    'hugetlb.2MB.current': '0\n',
    'hugetlb.2MB.events': 'max 1\n',
    'cpuset.cpus.effective': '0-1\n',
    'cpuset.mems.effective': '0\n',
  });
  const s = driver.stats('/pocrun/c1');
  t.same(s.cpu, {
    usage: { total: 1500000, kernel: 500000, user: 1000000 },
    throttling: { periods: 10, throttledPeriods: 2, throttledTime: 30000 },
  });
  t.same(s.memory.usage, { limit: 1048576, usage: 4096, max: 8192, failcnt: 3 });
  t.same(s.memory.swap, { limit: 2 ** 64 - 1, usage: 4196, failcnt: 0 }, 'swap reported as memory+swap');
  t.equal(s.memory.cache, 2048);
  t.same(s.memory.raw, { anon: 1024, file: 2048 });
  t.same(s.pids, { current: 2, limit: 32 });
  t.same(s.blkio, {
    ioServiceBytesRecursive: [{ major: 8, op: 'Read', value: 4096 }, { major: 8, op: 'Write' }], // minor 0 left out, as Go's omitempty does
    ioServicedRecursive: [{ major: 8, op: 'Read', value: 1 }, { major: 8, op: 'Write' }],
  });
  t.same(s.hugetlb, { '2MB': { failcnt: 1 } });
  t.same(s.cpuset.cpus, [0, 1]);
  t.equal(s.network_interfaces, null);
  t.same(JSON.parse(JSON.stringify(s)).memory.kernel, { limit: 0, failcnt: 0 });
});

t.test('killAll writes cgroup.kill for SIGKILL when the kernel has it', async (t) => {
  const { driver, read } = fixture(t, { 'cgroup.kill': '' });
  driver.killAll('/pocrun/c1', 'SIGKILL');
  t.equal(read('cgroup.kill'), '1');
});

t.test('killAll with SIGKILL thaws a frozen cgroup, as v1\'s: left frozen it would read paused', async (t) => {
  const cases: [string, Record<string, string>, string][] = [
    ['cgroup.kill', { 'cgroup.kill': '', 'cgroup.freeze': '1', 'cgroup.events': 'frozen 1\n' }, '0'],
    ['no cgroup.kill (before Linux 5.14)', { 'cgroup.freeze': '1', 'cgroup.events': 'frozen 1\n' }, '0'],
    ['a thawed cgroup is not written', { 'cgroup.kill': '', 'cgroup.freeze': '0', 'cgroup.events': 'frozen 0\n' }, '0'],
  ];
  for (const [name, files, freeze] of cases) {
    const { driver, read } = fixture(t, files);
    writeTrace.writes = [];
    driver.killAll('/pocrun/c1', 'SIGKILL');
    const writes = writeTrace.writes.map((w) => w.replace(/.*\//, ''));
    writeTrace.writes = undefined;
    t.equal(read('cgroup.freeze'), freeze, name);
    t.equal(writes.includes('cgroup.freeze=0'), files['cgroup.freeze'] === '1', `${name}: thawed only when frozen`);
  }
});

t.test('killAll signals every process of the cgroup', async (t) => {
  const cases: [string, string, string[]][] = [
    ['a running cgroup is frozen meanwhile (here it never reports frozen: signalled anyway)', 'frozen 0\n',
      ['cgroup.freeze=1', 'cgroup.freeze=0']],
    ['a paused cgroup stays paused', 'frozen 1\n', []],
  ];
  for (const [name, events, wantWrites] of cases) {
    const child = spawn('sleep', ['60'], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const freeze = events === 'frozen 1\n' ? '1' : '0';
    const { driver } = fixture(t, { 'cgroup.procs': `${child.pid}\n`, 'cgroup.events': events, 'cgroup.freeze': freeze });
    writeTrace.writes = [];
    driver.killAll('/pocrun/c1', 'SIGTERM');
    const writes = writeTrace.writes.map((w) => w.replace(/.*\//, ''));
    writeTrace.writes = undefined;
    t.equal(await exited, 'SIGTERM', name);
    t.same(writes, wantWrites, name);
  }
});

t.test('destroy removes the cgroup and those below it', async (t) => {
  const root = t.testdir({ 'cgroup.controllers': '', pocrun: { c1: { sub: { subsub: {} } } } });
  const driver = new CgroupV2Driver(root);
  t.ok(driver.exists('/pocrun/c1'));
  driver.destroy('/pocrun/c1');
  t.notOk(driver.exists('/pocrun/c1'));
  t.ok(existsSync(`${root}/pocrun`));
  driver.destroy('/pocrun/c1');
  t.pass('destroying a missing cgroup is not an error');
  t.throws(() => driver.destroy('/'), /root cgroup/);
  t.throws(() => driver.destroy('/pocrun/../x'), /".."/);
});

t.test('host facts for features: version, controllers, freezer, clone into cgroup by kernel version', async (t) => {
  const { driver } = fixture(t);
  t.same(hostCgroupFacts(driver, '6.1.0-57-amd64'), {
    'io.github.pocrun.cgroup.version': '2',
    'io.github.pocrun.cgroup.controllers': CONTROLLERS.trim(),
    'io.github.pocrun.cgroup.freezer': 'cgroup.freeze',
    'io.github.pocrun.cgroup.cloneIntoCgroup': 'true',
  });
  for (const [kernel, has] of [['5.6.19', false], ['5.7.0', true], ['4.19.0-26-amd64', false], ['10.0', true]] as const) {
    t.equal(kernelHasCloneIntoCgroup(kernel), has, kernel);
  }
  const v1 = new CgroupV1Driver('/sys/fs/cgroup', { memory: '/x/memory', pids: '/x/pids' });
  t.same(hostCgroupFacts(v1), {
    'io.github.pocrun.cgroup.version': '1',
    'io.github.pocrun.cgroup.controllers': 'memory pids',
    'io.github.pocrun.cgroup.freezer': 'none',
    'io.github.pocrun.cgroup.cloneIntoCgroup': 'false',
  });
});
