/**
 * The cgroup v2 driver against the kernel (guest only: a pure cgroup v2 host with every controller). A few
 * containers, each checked in many of the kernel's files: every resource of config-linux.md as converted for v2,
 * update, the freezer, events --stats and OOM events, the cgroup namespace, the init cloned straight into its
 * cgroup, refusals by the kernel named by their config field, and nothing left behind.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { POCRUN, makeBundle, setup } from '../helpers/runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';

if (!existsSync('/sys/fs/cgroup/cgroup.controllers')) throw new Error('this suite needs a cgroup v2 host: run it with scripts/guest/test.sh');

const { work, rt, residue } = setup();
const MB = 1024 * 1024;
const cgroupFile = (cgroup: string, file: string) => readFileSync(`/sys/fs/cgroup${cgroup}/${file}`, 'utf8').trim();

/** The guest's first disk: its name and "major:minor", for the io limits. */
function firstDisk(): { name: string; dev: string } {
  const name = readdirSync('/sys/block').find((d) => /^(vd|sd|nvme)/.test(d));
  if (!name) throw new Error('no disk in /sys/block');
  return { name, dev: readFileSync(`/sys/block/${name}/dev`, 'utf8').trim() };
}
const rootDisk = () => firstDisk().dev;

function detached(id: string, change: (s: Spec) => void) {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sleep', '1000'];
    change(s);
  });
  rt.ok(['run', '-d', '--bundle', b.dir, id]);
  return { b, cgroup: b.spec.linux!.cgroupsPath!, pid: rt.state(id).pid };
}

t.test('every resource lands in its v2 file; update, pause, stats and delete work on them', async (t) => {
  const [major, minor] = rootDisk().split(':').map(Number) as [number, number];
  const { cgroup, pid } = detached('v2res', (s) => {
    s.linux!.resources = {
      ...s.linux!.resources,
      memory: { limit: 64 * MB, reservation: 32 * MB, swap: 96 * MB },
      cpu: { shares: 512, quota: 20000, period: 100000, burst: 10000, idle: 0, cpus: '0', mems: '0' },
      pids: { limit: 32 },
      blockIO: {
        weight: 500,
        throttleReadBpsDevice: [{ major, minor, rate: MB }],
        throttleWriteBpsDevice: [{ major, minor, rate: 2 * MB }],
        throttleReadIOPSDevice: [{ major, minor, rate: 100 }],
        throttleWriteIOPSDevice: [{ major, minor, rate: 200 }],
      },
      hugepageLimits: [{ pageSize: '2MB', limit: 4 * MB }],
      unified: { 'memory.high': String(48 * MB), 'memory.oom.group': '1' },
    };
  });
  const file = (f: string) => cgroupFile(cgroup, f);
  t.equal(file('memory.max'), String(64 * MB), 'limit → memory.max');
  t.equal(file('memory.low'), String(32 * MB), 'reservation → memory.low');
  t.equal(file('memory.swap.max'), String(32 * MB), 'swap → memory.swap.max as swap minus limit');
  t.equal(file('memory.high'), String(48 * MB), 'unified written as given');
  t.equal(file('memory.oom.group'), '1', 'memory.oom.group through unified');
  t.equal(file('cpu.weight'), '59', 'shares 512 → weight 59 (runc 1.3+, crun 1.23+)');
  t.equal(file('cpu.max'), '20000 100000', 'quota and period → cpu.max');
  t.equal(file('cpu.max.burst'), '10000', 'burst → cpu.max.burst');
  t.equal(file('cpu.idle'), '0');
  t.equal(file('cpuset.cpus'), '0');
  t.equal(file('cpuset.mems'), '0');
  t.equal(file('pids.max'), '32');
  if (existsSync(`/sys/fs/cgroup${cgroup}/io.bfq.weight`)) t.match(file('io.bfq.weight'), /^default 500$/m, 'bfq takes the v1 weight');
  else t.equal(file('io.weight'), 'default 4950', 'blkio weight 500 → io.weight 4950');
  t.equal(file('io.max'), `${major}:${minor} rbps=${MB} wbps=${2 * MB} riops=100 wiops=200`);
  t.equal(file('hugetlb.2MB.max'), String(4 * MB));
  if (existsSync(`/sys/fs/cgroup${cgroup}/hugetlb.2MB.rsvd.max`)) t.equal(file('hugetlb.2MB.rsvd.max'), String(4 * MB), 'and the reservation limit');
  t.same(file('cgroup.procs').split('\n').map(Number), [pid], 'the init alone is in the cgroup');

  // The container's view: its cgroup namespace is rooted at its cgroup, mounted at /sys/fs/cgroup.
  const inside = rt.ok(['exec', 'v2res', 'sh', '-c', 'cat /proc/self/cgroup; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max']);
  t.same(inside.trim().split('\n'), ['0::/', String(64 * MB), '32'], 'the container sees its own cgroup as /');

  // update: flags, then a resources file; only what is given changes.
  rt.ok(['update', '--memory', String(128 * MB), '--memory-swap', String(160 * MB), '--pids-limit', '64', '--cpu-quota', '50000', 'v2res']);
  t.equal(file('memory.max'), String(128 * MB));
  t.equal(file('memory.swap.max'), String(32 * MB));
  t.equal(file('pids.max'), '64');
  t.equal(file('cpu.max'), '50000 100000');
  t.equal(file('memory.low'), String(32 * MB), 'untouched');
  writeFileSync(join(work, 'res.json'), JSON.stringify({ cpu: { shares: 1024 }, unified: { 'memory.high': 'max' } }));
  rt.ok(['update', '--resources', join(work, 'res.json'), 'v2res']);
  t.equal(file('cpu.weight'), '100', 'the default shares are the default weight');
  t.equal(file('memory.high'), 'max');
  rt.ok(['update', '--cpu-idle', '1', 'v2res']);
  t.equal(file('cpu.idle'), '1', 'cpu.idle');
  const refused = rt.run(['update', '--cpu-quota', '500', 'v2res']);
  t.not(refused.status, 0);
  t.match(refused.stderr, /update \/linux\/resources\/cpu\/quota: cgroup \/\S+: write cpu.max=500: Invalid argument/, 'a quota the kernel refuses names its field');

  // The freezer: cgroup.freeze, and `paused` in the state.
  rt.ok(['pause', 'v2res']);
  t.equal(file('cgroup.freeze'), '1');
  t.match(file('cgroup.events'), /^frozen 1$/m);
  t.equal(rt.state('v2res').status, 'paused');
  t.match(readFileSync(`/proc/${pid}/stat`, 'utf8'), /\) S /, 'the frozen init sleeps');
  rt.ok(['resume', 'v2res']);
  t.equal(file('cgroup.freeze'), '0');
  t.match(file('cgroup.events'), /^frozen 0$/m);
  t.equal(rt.state('v2res').status, 'running');

  // events --stats from the v2 files.
  const ev = JSON.parse(rt.ok(['events', '--stats', 'v2res']));
  t.equal(ev.type, 'stats');
  t.equal(ev.data.memory.usage.limit, 128 * MB, 'memory limit from memory.max');
  t.ok(ev.data.memory.usage.usage > 0, 'memory usage from memory.current');
  t.equal(ev.data.memory.swap.limit, 160 * MB, 'swap as memory+swap, as runc reports it');
  t.ok(ev.data.cpu.usage.total > 0, 'cpu usage from cpu.stat');
  t.same(ev.data.pids, { current: 1, limit: 64 }, 'pids from pids.current and pids.max');
  t.same(ev.data.cpuset.cpus, [0]);
  t.ok('2MB' in ev.data.hugetlb, 'hugetlb sizes from hugetlb.*.current');

  rt.ok(['delete', '--force', 'v2res']);
  t.notOk(existsSync(`/sys/fs/cgroup${cgroup}`), 'delete removes the cgroup');
});

t.test('the init is cloned into its cgroup: the helper that waits for it stays out; OOM kills are events', async (t) => {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sleep', '1000'];
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 16 * MB, swap: 16 * MB } };
  });
  const cgroup = b.spec.linux!.cgroupsPath!;
  // Foreground `run`: the helper is the init's parent until the end.
  const run = spawn(POCRUN, ['--root', rt.root, 'run', '--bundle', b.dir, 'v2fg'], { stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => run.on('exit', (code) => resolve(code)));
  t.teardown(async () => {
    rt.run(['delete', '--force', 'v2fg']);
    await exited;
  });
  // The state appears once the foreground run has created the container.
  for (let i = 0; i < 600 && !/"status": "running"/.test(rt.run(['state', 'v2fg']).stdout); i++) await new Promise((r) => setTimeout(r, 100));
  const init = rt.state('v2fg').pid;
  const helper = Number(readFileSync(`/proc/${init}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
  t.same(cgroupFile(cgroup, 'cgroup.procs').split('\n').map(Number), [init], 'only the init is in the cgroup');
  t.not(readFileSync(`/proc/${helper}/cgroup`, 'utf8').trim(), `0::${cgroup}`, 'its parent, the helper, never joined it');

  // An OOM kill in the container: `events` reports it, memory.events counts it.
  const events = spawn(POCRUN, ['--root', rt.root, 'events', '--interval', '100ms', 'v2fg'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stream = '';
  events.stdout!.on('data', (d: Buffer) => (stream += d.toString()));
  const hog = rt.run(['exec', 'v2fg', 'tail', '/dev/zero']);
  t.equal(hog.status, 137, 'the memory hog is killed (SIGKILL)');
  t.match(cgroupFile(cgroup, 'memory.events'), /^oom_kill [1-9]/m, 'memory.events counts the OOM kill');
  for (let i = 0; i < 100 && !stream.includes('"type":"oom"'); i++) await new Promise((r) => setTimeout(r, 100));
  events.kill('SIGTERM');
  t.match(stream, /\{"type":"oom","id":"v2fg"\}/, 'events reports the OOM kill');

  rt.ok(['kill', 'v2fg', 'KILL']);
  t.equal(await exited, 137, 'run exits with the init status');
  t.notOk(existsSync(`/sys/fs/cgroup${cgroup}`), 'run removes the cgroup');
});

t.test('a value the kernel refuses fails create with its config field named, leaving nothing', async (t) => {
  const cases: [string, (s: Spec) => void, RegExp][] = [
    ['cpu quota below 1 ms', (s) => (s.linux!.resources = { cpu: { quota: 500, period: 100000 } }),
      /config.json \/linux\/resources\/cpu\/quota: cgroup \/\S+: write cpu.max=500 100000: Invalid argument/],
    ['cpus the host lacks', (s) => (s.linux!.resources = { cpu: { cpus: '64-65' } }),
      /config.json \/linux\/resources\/cpu\/cpus: cgroup \/\S+: write cpuset.cpus=64-65: Numerical result out of range/],
    ['an rdma device the host lacks', (s) => (s.linux!.resources = { rdma: { mlx5_9: { hcaHandles: 2 } } }),
      /config.json \/linux\/resources\/rdma\/mlx5_9: cgroup \/\S+: write rdma.max=mlx5_9 hca_handle=2: /],
    ['an unknown unified file', (s) => (s.linux!.resources = { unified: { 'memory.nosuch': '1' } }),
      /config.json \/linux\/resources\/unified\/memory.nosuch: cgroup \/\S+: write memory.nosuch=1: No such file or directory/],
  ];
  for (const [name, change, message] of cases) {
    const b = makeBundle(work, change);
    const r = rt.run(['run', '--bundle', b.dir, 'v2bad']);
    t.not(r.status, 0, name);
    t.match(r.stderr, message, name);
    t.notOk(existsSync(`/sys/fs/cgroup${b.spec.linux!.cgroupsPath}`), `${name}: no cgroup left`);
    t.notOk(existsSync(join(rt.root, 'v2bad')), `${name}: no state left`);
  }
});

t.test('with BFQ on the disk, the blockIO weights go to io.bfq.weight as they are (as runc)', async (t) => {
  const { name, dev } = firstDisk();
  const [major, minor] = dev.split(':').map(Number) as [number, number];
  const modprobe = spawnSync('modprobe', ['bfq'], { encoding: 'utf8' });
  t.equal(modprobe.status, 0, `modprobe bfq: ${modprobe.stderr}`);
  const scheduler = `/sys/block/${name}/queue/scheduler`;
  const before = /\[(\S+)\]/.exec(readFileSync(scheduler, 'utf8'))?.[1] ?? 'none';
  writeFileSync(scheduler, 'bfq');
  t.teardown(() => writeFileSync(scheduler, before));
  const { cgroup } = detached('v2bfq', (s) => {
    s.linux!.resources = { ...s.linux!.resources, blockIO: { weight: 500, weightDevice: [{ major, minor, weight: 300 }] } };
  });
  const weights = cgroupFile(cgroup, 'io.bfq.weight');
  t.match(weights, /^default 500$/m, 'weight, in the v1 range BFQ shares');
  t.match(weights, new RegExp(`^${major}:${minor} 300$`, 'm'), 'weightDevice');
  rt.ok(['delete', '--force', 'v2bfq']);
});

t.test('features says what this host has', async (t) => {
  const f = JSON.parse(rt.ok(['features']));
  t.equal(f.annotations['io.github.pocrun.cgroup.version'], '2');
  t.equal(f.annotations['io.github.pocrun.cgroup.controllers'], readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').trim());
  t.equal(f.annotations['io.github.pocrun.cgroup.freezer'], 'cgroup.freeze');
  t.equal(f.annotations['io.github.pocrun.cgroup.cloneIntoCgroup'], 'true');
});

t.test('nothing left behind', async (t) => residue(t));
