/**
 * The systemd cgroup driver on a cgroup v1 host booted with systemd: the guest booted with
 * systemd.unified_cgroup_hierarchy=0 (systemd's hybrid layout, as Debian 10, Ubuntu 20.04, RHEL 8 and older
 * Kubernetes nodes still run). systemd makes the scope in the controllers it manages; pocrun makes the others
 * at the same path, as runc's legacy manager does. Each behaviour is checked from systemd's side and from the
 * kernel's. Runs only there: scripts/test.sh test/guest-hybrid/systemd-v1.test.ts (POC_GUEST_CGROUPS=hybrid).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDead, makeBundle, setup } from '../helpers/runtime.js';
import { show, systemctl, unitsNamed } from '../helpers/systemd.js';
import type { Spec } from '../../src/spec/generated/config.js';

const MB = 1024 * 1024;
/** Every unit these tests make is named pocrun-test-<id>.scope (cgroupsPath system.slice:pocrun-test:<id>). */
const PREFIX = 'pocrun-test';
/** The v1 hierarchies a container's processes are in; systemd manages some, pocrun the others. */
const CONTROLLERS = ['memory', 'pids', 'devices', 'cpu,cpuacct', 'cpuset', 'freezer', 'blkio', 'name=systemd'];

const { work, rt, residue } = setup();
let n = 0;
const newId = () => `sd1${process.pid}-${n++}`;

const testUnits = () => unitsNamed(`${PREFIX}-`);

function bundle(id: string, args: string[], change: (s: Spec) => void = () => {}) {
  return makeBundle(work, (s) => {
    s.process!.args = args;
    s.linux!.cgroupsPath = `system.slice:${PREFIX}:${id}`;
    change(s);
  });
}

/** /proc/PID/cgroup as hierarchy -> path. */
function cgroupsOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, names, path] = line.match(/^\d+:([^:]*):(.*)$/)!;
    out[names || 'unified'] = path!;
  }
  return out;
}

/** The directory of a v1 hierarchy ("cpu,cpuacct" is mounted at /sys/fs/cgroup/cpu,cpuacct; name=systemd at systemd). */
const dirOf = (hierarchy: string, path: string) => join('/sys/fs/cgroup', hierarchy === 'name=systemd' ? 'systemd' : hierarchy, path);
const read = (file: string) => readFileSync(file, 'utf8').trim();

t.test('the guest is a v1 host with systemd as its init', async (t) => {
  t.equal(process.env.POC_GUEST, '1', 'POC_GUEST=1: this file runs in the guest, never on the host');
  t.ok(existsSync('/run/systemd/system'), 'systemd is the init');
  t.ok(existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes'), 'the memory controller is on cgroup v1');
  const features = JSON.parse(rt.ok(['features']));
  t.equal(features.linux.cgroup.systemd, true);
  t.equal(features.linux.cgroup.systemdUser, false, 'not rootless: a user has no delegated subtree on v1');
  t.equal(features.annotations['io.github.pocrun.cgroup.version'], '1');
});

t.test('create: a transient scope with Delegate and the v1 properties; every hierarchy at the same path', async (t) => {
  const id = newId();
  const unit = `${PREFIX}-${id}.scope`;
  const path = `/system.slice/${unit}`;
  const b = bundle(id, ['sleep', '1000'], (s) => {
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * MB }, pids: { limit: 32 }, cpu: { quota: 50000, period: 100000, cpus: '0', shares: 2048 } };
    // No blockIO weight: without the BFQ scheduler the kernel has no blkio weight file, and runc fails on it too.
  });
  rt.ok(['--systemd-cgroup', 'create', '--bundle', b.dir, id]);
  t.teardown(() => void rt.run(['delete', '-f', id]));
  const pid = rt.state(id).pid;

  t.same(
    show(unit, 'ActiveState', 'Delegate', 'Slice', 'ControlGroup', 'MemoryLimit', 'TasksMax', 'CPUShares', 'CPUQuotaPerSecUSec', 'DevicePolicy'),
    {
      ActiveState: 'active',
      Delegate: 'yes',
      Slice: 'system.slice',
      ControlGroup: path,
      MemoryLimit: String(64 * MB),
      TasksMax: '32',
      CPUShares: '2048',
      CPUQuotaPerSecUSec: '500ms',
      DevicePolicy: 'strict',
    },
    "systemctl show: v1's MemoryLimit and CPUShares, not v2's MemoryMax and CPUWeight",
  );
  const cgroups = cgroupsOf(pid);
  for (const h of CONTROLLERS) t.equal(cgroups[h], path, `the init is in ${h}:${path}`);

  t.equal(read(dirOf('memory', join(path, 'memory.limit_in_bytes'))), String(64 * MB), 'memory.limit_in_bytes');
  t.equal(read(dirOf('pids', join(path, 'pids.max'))), '32', 'pids.max');
  t.equal(read(dirOf('cpu,cpuacct', join(path, 'cpu.cfs_quota_us'))), '50000', 'cpu.cfs_quota_us');
  t.equal(read(dirOf('cpu,cpuacct', join(path, 'cpu.shares'))), '2048', 'cpu.shares');
  t.equal(read(dirOf('cpuset', join(path, 'cpuset.cpus'))), '0', 'cpuset.cpus, in the hierarchy pocrun made');
  t.match(read(dirOf('devices', join(path, 'devices.list'))), /^c 1:3 rwm$/m, 'devices.list allows /dev/null');
  t.notMatch(read(dirOf('devices', join(path, 'devices.list'))), /^a \*:\* rwm$/m, 'and not every device');

  rt.ok(['start', id]);
  t.equal(rt.state(id).status, 'running');
  t.match(systemctl('status', unit), new RegExp(`${pid} sleep 1000`), "systemctl status lists the container's process");
  t.same(JSON.parse(rt.ok(['ps', '--format', 'json', id])), [pid], 'ps finds it');
});

t.test("update, pause through v1's freezer, kill --all; delete removes the unit and every hierarchy's directory", async (t) => {
  const id = newId();
  const unit = `${PREFIX}-${id}.scope`;
  const path = `/system.slice/${unit}`;
  const b = bundle(id, ['sh', '-c', 'sleep 1000 & sleep 1000; echo'], (s) => {
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * MB }, pids: { limit: 32 } };
  });
  rt.ok(['--systemd-cgroup', 'run', '-d', '--bundle', b.dir, id]);
  t.teardown(() => void rt.run(['delete', '-f', id]));

  rt.ok(['update', '--memory', '128m', '--pids-limit', '64', id]);
  t.same(show(unit, 'MemoryLimit', 'TasksMax'), { MemoryLimit: String(128 * MB), TasksMax: '64' }, 'systemd has the new values');
  t.same(
    [read(dirOf('memory', join(path, 'memory.limit_in_bytes'))), read(dirOf('pids', join(path, 'pids.max')))],
    [String(128 * MB), '64'],
    'and so do the files',
  );
  t.match(JSON.parse(rt.ok(['events', '--stats', id])), { data: { memory: { usage: { limit: 128 * MB } }, pids: { limit: 64 } } }, 'events --stats');

  rt.ok(['pause', id]);
  t.equal(rt.state(id).status, 'paused');
  t.equal(read(dirOf('freezer', join(path, 'freezer.state'))), 'FROZEN', 'frozen by the v1 freezer pocrun made');
  rt.ok(['resume', id]);
  t.equal(rt.state(id).status, 'running');

  const pids: number[] = JSON.parse(rt.ok(['ps', '--format', 'json', id]));
  t.equal(pids.length, 3, 'sh and its two sleeps');
  rt.ok(['kill', '--all', id, 'KILL']);
  for (let i = 0; i < 500 && !pids.every(isDead); i++) spawnSync('sleep', ['0.02']);
  t.ok(pids.every(isDead), 'kill --all reached every process');

  rt.ok(['delete', id]);
  t.equal(show(unit, 'LoadState').LoadState, 'not-found', 'the unit is gone');
  for (const h of CONTROLLERS) t.notOk(existsSync(dirOf(h, path)), `no ${h} directory`);
  t.notOk(existsSync(join(rt.root, id)), 'no state');
});

t.test('devices outside the rules are refused; a foreground run leaves no unit', async (t) => {
  const id = newId();
  const b = bundle(id, ['sh', '-c', 'head -c 4 /dev/zero | wc -c; mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem; echo "mem: $?"; exit 3'], (s) => {
    for (const set of ['bounding', 'effective', 'permitted'] as const) s.process!.capabilities![set] = [...(s.process!.capabilities![set] ?? []), 'CAP_MKNOD'];
  });
  const r = rt.run(['--systemd-cgroup', 'run', '--bundle', b.dir, id]);
  t.equal(r.status, 3, "the container's status");
  t.match(r.stdout, /^4\n/, 'an allowed device works');
  t.match(r.stderr + r.stdout, /Operation not permitted[\s\S]*mem: 1/, 'a device outside the rules (1:1) cannot be opened');
  t.equal(show(`${PREFIX}-${id}.scope`, 'LoadState').LoadState, 'not-found', 'the unit is gone');
});

t.test('a pocrun killed once the scope is made leaves what delete --force removes', async (t) => {
  const id = newId();
  const unit = `${PREFIX}-${id}.scope`;
  const r = rt.run(['--systemd-cgroup', 'create', '--bundle', bundle(id, ['true']).dir, id], { env: { ...process.env, POCRUN_DEBUG_KILL_AT: 'created' } });
  t.equal(r.signal, 'SIGKILL');
  t.equal(show(unit, 'ActiveState').ActiveState, 'active', 'the scope is there');
  rt.ok(['delete', '--force', id]);
  t.equal(show(unit, 'LoadState').LoadState, 'not-found', 'delete --force stopped the unit');
  for (const h of CONTROLLERS) t.notOk(existsSync(dirOf(h, `/system.slice/${unit}`)), `no ${h} directory`);
  t.notOk(existsSync(join(rt.root, id)), 'no state');
});

t.test('nothing left behind: no unit, state, cgroup or process', async (t) => {
  t.same(testUnits(), [], 'no unit of these tests is loaded');
  residue(t);
});
