/**
 * The v1 driver on this host's real cgroups (root, hybrid hierarchy). Everything it makes is named
 * /sys/fs/cgroup/<controller>/pocrun-test-<random>; the only processes it signals are its own children.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { CgroupV1Driver, detectCgroups } from '../../src/cgroups/index.js';

const isRoot = process.getuid?.() === 0;
const driver = isRoot ? detectCgroups() : undefined;
if (!isRoot || !(driver instanceof CgroupV1Driver)) {
  t.plan(0, 'needs root on a cgroup v1 (hybrid) host');
} else {
  run(driver);
}

function run(driver: CgroupV1Driver) {
  const name = `pocrun-test-${randomBytes(6).toString('hex')}`;
  const path = `/${name}`;
  const shmFile = `/dev/shm/${name}`;
  const file = (controller: string, f: string) => readFileSync(`/sys/fs/cgroup/${controller}${path}/${f}`, 'utf8').trim();
  const children: ChildProcess[] = [];

  t.teardown(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(shmFile, { force: true });
    // Only our own cgroup, by its exact path.
    for (let i = 0; i < 20 && driver.exists(path); i++) {
      try {
        driver.destroy(path);
      } catch {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      }
    }
  });

  const procState = (pid: number) => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  /** The process state once it is `want` (a process just exec'd or thawed may be running for a moment). */
  const settledState = async (pid: number, want: string) => {
    let state = procState(pid);
    for (let i = 0; i < 100 && state !== want; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      state = procState(pid);
    }
    return state;
  };

  t.test('the mounted controllers are the ones this host has', async (t) => {
    for (const c of ['blkio', 'cpu', 'cpuacct', 'cpuset', 'devices', 'freezer', 'memory', 'pids']) {
      t.ok(driver.mounts[c], `${c} mounted`);
    }
  });

  t.test('create applies limits that read back from the kernel', async (t) => {
    t.notOk(driver.exists(path));
    driver.create(path, {
      memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20, swappiness: 10 },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' },
      pids: { limit: 16 },
      devices: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 5, access: 'rw' },
      ],
    });
    t.ok(driver.exists(path));
    for (const m of driver.hierarchies()) t.ok(statSync(m + path).isDirectory(), `made in ${m}`);
    t.equal(file('memory', 'memory.limit_in_bytes'), String(64 << 20));
    t.equal(file('memory', 'memory.soft_limit_in_bytes'), String(32 << 20));
    t.equal(file('memory', 'memory.memsw.limit_in_bytes'), String(128 << 20));
    t.equal(file('memory', 'memory.swappiness'), '10');
    t.equal(file('cpu', 'cpu.shares'), '512');
    t.equal(file('cpu', 'cpu.cfs_quota_us'), '50000');
    t.equal(file('cpu', 'cpu.cfs_period_us'), '100000');
    t.equal(file('cpuset', 'cpuset.cpus'), '0');
    t.equal(file('cpuset', 'cpuset.mems'), '0');
    t.equal(file('pids', 'pids.max'), '16');
    t.equal(file('devices', 'devices.list'), 'c 1:3 rwm\nc 1:5 rw');
  });

  t.test('apply (update) changes limits', async (t) => {
    driver.apply(path, { cpu: { quota: 20000 }, pids: { limit: 8 } });
    t.equal(file('cpu', 'cpu.cfs_quota_us'), '20000');
    t.equal(file('pids', 'pids.max'), '8');
  });

  let child: ChildProcess;
  t.test('a process joins through the procs files', async (t) => {
    // It waits for a line, then fills a tmpfs file (shmem: charged to its cgroup, not reclaimable without swap).
    child = spawn('sh', ['-c', `read go; head -c 4194304 /dev/zero > ${shmFile}; echo done; exec sleep 1000`], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(child);
    const pid = child.pid!;
    const files = driver.procsFiles(path);
    t.equal(files.length, driver.hierarchies().length);
    for (const f of files) writeFileSync(f, String(pid));
    const cgroups = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    for (const c of ['memory', 'cpu', 'cpuset', 'pids', 'freezer', 'devices', 'blkio', 'cpuacct']) {
      t.match(cgroups, new RegExp(`^\\d+:${c}:${path}$`, 'm'), `in ${c}`);
    }
    t.same(driver.pids(path), [pid]);
    const done = new Promise((resolve) => child.stdout!.once('data', resolve));
    child.stdin!.write('go\n');
    await done;
    t.ok(Number(file('memory', 'memory.usage_in_bytes')) >= 4 << 20, 'usage charged to the cgroup');
  });

  t.test('a memory limit below the usage is refused with EBUSY, named', async (t) => {
    t.throws(() => driver.apply(path, { memory: { limit: 1 << 20 } }), {
      name: 'PocrunError',
      message: new RegExp(
        `^cgroup ${path}: write memory.limit_in_bytes=1048576: Device or resource busy: the new limit is below the current usage \\(\\d+ bytes\\)$`,
      ),
    });
    t.equal(file('memory', 'memory.limit_in_bytes'), String(64 << 20), 'limit unchanged');
  });

  t.test('stats', async (t) => {
    const s = driver.stats(path);
    t.ok((s.memory.usage.usage ?? 0) >= 4 << 20, 'memory usage');
    t.equal(s.memory.usage.limit, 64 << 20);
    t.equal(s.memory.swap.limit, 128 << 20);
    t.type(s.memory.usage.failcnt, 'number');
    t.ok(s.memory.raw && 'shmem' in s.memory.raw, 'memory.stat');
    t.same(s.pids, { current: 1, limit: 8 });
    t.ok((s.cpu.usage.total ?? 0) > 0, 'cpu usage');
    t.same(s.cpuset.cpus, [0]);
    t.doesNotThrow(() => JSON.stringify(s));
  });

  t.test('freeze and thaw, seen in /proc/<pid>/status', async (t) => {
    const pid = child.pid!;
    t.equal(driver.state(path), 'thawed');
    t.equal(await settledState(pid, 'S'), 'S');
    driver.freeze(path);
    t.equal(driver.state(path), 'frozen');
    t.equal(procState(pid), 'D', 'frozen tasks show as D, at once');
    t.equal(driver.state(path), 'frozen');
    driver.thaw(path);
    t.equal(driver.state(path), 'thawed');
    t.equal(await settledState(pid, 'S'), 'S');
  });

  t.test('destroy refuses while a process is inside, naming it', async (t) => {
    t.throws(() => driver.destroy(path), {
      message: new RegExp(`^cgroup ${path}: rmdir .*${name}: Device or resource busy \\(processes still in it: ${child.pid}\\)`),
    });
    t.ok(driver.exists(path));
  });

  t.test('killAll kills every process; destroy leaves nothing', async (t) => {
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    driver.killAll(path, 'SIGKILL');
    t.equal(await exited, 'SIGKILL');
    t.same(driver.pids(path), []);
    rmSync(shmFile, { force: true });
    driver.destroy(path);
    t.notOk(driver.exists(path));
    for (const m of driver.hierarchies()) t.notOk(existsSync(m + path), `gone from ${m}`);
    driver.destroy(path);
    t.pass('destroy again is a no-op');
  });
}
