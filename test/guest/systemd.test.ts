/**
 * The systemd cgroup driver (`pocrun --systemd-cgroup`) against a real systemd: the guest's PID 1 (cgroup v2
 * alone). Each behaviour is checked from systemd's side (systemctl show and status) and from the kernel's (the
 * cgroup's files, /proc/<pid>/cgroup). Runs only in the guest: scripts/guest/test.sh test/guest/systemd.test.ts.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDead, makeBundle, setup } from '../helpers/runtime.js';
import { show, systemctl, unitsNamed } from '../helpers/systemd.js';
import type { Spec } from '../../src/spec/generated/config.js';

const MB = 1024 * 1024;
/** Every unit these tests make is named pocrun-test-<id>.scope (cgroupsPath SLICE:pocrun-test:<id>). */
const PREFIX = 'pocrun-test';

const { work, rt, residue } = setup();
let n = 0;
const newId = () => `sd${process.pid}-${n++}`;

/** The units of these tests that systemd has loaded (active, failed or anything else). */
const testUnits = () => unitsNamed(`${PREFIX}-`, 'kubepods');

function bundle(id: string, args: string[], change: (s: Spec) => void = () => {}, slice = 'system.slice') {
  return makeBundle(work, (s) => {
    s.process!.args = args;
    s.linux!.cgroupsPath = `${slice}:${PREFIX}:${id}`;
    change(s);
  });
}

const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8').trim();

t.test('the guest has systemd as its init, and features says systemd: true', async (t) => {
  t.equal(process.env.POC_GUEST, '1', 'POC_GUEST=1: this file runs in the guest (scripts/guest/test.sh), never on the host');
  t.ok(existsSync('/run/systemd/system'), 'systemd is the init');
  t.equal(JSON.parse(rt.ok(['features'])).linux.cgroup.systemd, true);
});

t.test('create: a transient scope with Delegate, the init in it, and the resources systemd knows', async (t) => {
  const id = newId();
  const unit = `${PREFIX}-${id}.scope`;
  const b = bundle(id, ['sleep', '1000'], (s) => {
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * MB }, pids: { limit: 32 }, cpu: { quota: 50000, period: 100000, cpus: '0', shares: 2048 } };
  });
  rt.ok(['--systemd-cgroup', 'create', '--bundle', b.dir, id]);
  t.teardown(() => void rt.run(['delete', '-f', id]));
  const pid = rt.state(id).pid;
  const cgroup = `/system.slice/${unit}`;
  const dir = `/sys/fs/cgroup${cgroup}`;

  t.same(
    show(unit, 'ActiveState', 'Delegate', 'Slice', 'ControlGroup', 'DefaultDependencies', 'Description', 'MemoryMax', 'TasksMax', 'CPUQuotaPerSecUSec', 'CPUQuotaPeriodUSec', 'AllowedCPUs', 'DevicePolicy'),
    {
      ActiveState: 'active',
      Delegate: 'yes',
      Slice: 'system.slice',
      ControlGroup: cgroup,
      DefaultDependencies: 'no',
      Description: `pocrun container ${id}`,
      MemoryMax: String(64 * MB),
      TasksMax: '32',
      CPUQuotaPerSecUSec: '500ms',
      CPUQuotaPeriodUSec: '100ms',
      AllowedCPUs: '0',
      DevicePolicy: 'strict',
    },
    'systemctl show of the scope',
  );
  t.match(systemctl('show', unit, '-p', 'DeviceAllow'), /DeviceAllow=\/dev\/char\/1:3 rwm/, "the default devices are in systemd's allow-list");
  t.equal(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), `0::${cgroup}\n`, "the init is in the scope's cgroup");
  t.equal(read(dir, 'memory.max'), String(64 * MB), 'memory.max');
  t.equal(read(dir, 'pids.max'), '32', 'pids.max');
  t.equal(read(dir, 'cpu.max'), '50000 100000', 'cpu.max');
  t.equal(read(dir, 'cpuset.cpus'), '0', 'cpuset.cpus');
  t.equal(read(dir, 'cpu.weight'), show(unit, 'CPUWeight').CPUWeight, "cpu.weight is what systemd was told");
  const record = JSON.parse(readFileSync(join(rt.root, id, 'state.json'), 'utf8'));
  t.same(record.systemd, { unit, slice: 'system.slice' }, 'the state record names the unit');

  rt.ok(['start', id]);
  t.equal(rt.state(id).status, 'running');
  t.match(systemctl('status', unit), new RegExp(`${pid} sleep 1000`), 'systemctl status lists the container\'s process');
  t.same(JSON.parse(rt.ok(['ps', '--format', 'json', id])), [pid], 'ps finds it through the cgroup');
});

t.test('update sets the unit\'s properties and the files; pause, resume, kill --all; delete stops the unit', async (t) => {
  const id = newId();
  const unit = `${PREFIX}-${id}.scope`;
  const dir = `/sys/fs/cgroup/system.slice/${unit}`;
  const b = bundle(id, ['sh', '-c', 'sleep 1000 & sleep 1000; echo'] /* sh stays: not the last command */, (s) => {
    s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * MB }, pids: { limit: 32 } };
  });
  rt.ok(['--systemd-cgroup', 'run', '-d', '--bundle', b.dir, id]);
  t.teardown(() => void rt.run(['delete', '-f', id]));

  rt.ok(['update', '--memory', '128m', '--pids-limit', '64', id]);
  t.same(show(unit, 'MemoryMax', 'TasksMax'), { MemoryMax: String(128 * MB), TasksMax: '64' }, 'systemd has the new values');
  t.same([read(dir, 'memory.max'), read(dir, 'pids.max')], [String(128 * MB), '64'], 'and so do the files');
  const stats = JSON.parse(rt.ok(['events', '--stats', id]));
  t.match(stats, { type: 'stats', id, data: { memory: { usage: { limit: 128 * MB } }, pids: { limit: 64 } } }, "events --stats reads the scope's cgroup");

  rt.ok(['pause', id]);
  t.equal(rt.state(id).status, 'paused', 'paused');
  t.equal(read(dir, 'cgroup.freeze'), '1', 'through the cgroup freezer');
  rt.ok(['resume', id]);
  t.equal(rt.state(id).status, 'running', 'resumed');

  const pids: number[] = JSON.parse(rt.ok(['ps', '--format', 'json', id]));
  t.equal(pids.length, 3, 'sh and its two sleeps');
  rt.ok(['kill', '--all', id, 'KILL']);
  for (let i = 0; i < 500 && !pids.every(isDead); i++) spawnSync('sleep', ['0.02']);
  t.ok(pids.every(isDead), 'kill --all reached every process of the scope');

  rt.ok(['delete', id]);
  t.equal(show(unit, 'LoadState').LoadState, 'not-found', 'the unit is gone');
  t.notOk(existsSync(dir), 'and its cgroup');
  t.notOk(existsSync(join(rt.root, id)), 'and the state');
});

t.test('run in the foreground: the exit status, and no unit afterwards', async (t) => {
  const id = newId();
  const b = bundle(id, ['sh', '-c', 'cat /proc/self/cgroup; exit 3']);
  const r = rt.run(['--systemd-cgroup', 'run', '--bundle', b.dir, id]);
  t.equal(r.status, 3, 'the container\'s status');
  t.match(r.stdout, /^0::\//, 'it ran');
  t.equal(show(`${PREFIX}-${id}.scope`, 'LoadState').LoadState, 'not-found', 'the unit is gone');
});

t.test("device rules hold with systemd's program beside pocrun's", async (t) => {
  const id = newId();
  const b = bundle(id, ['sh', '-c', 'head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null ok; mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem; echo "mem: $?"'], (s) => {
    for (const set of ['bounding', 'effective', 'permitted'] as const) s.process!.capabilities![set] = [...(s.process!.capabilities![set] ?? []), 'CAP_MKNOD'];
  });
  const r = rt.run(['--systemd-cgroup', 'run', '--bundle', b.dir, id]);
  t.equal(r.status, 0, 'exit status 0');
  t.match(r.stdout, /^4\nnull ok\n/, 'allowed devices work');
  t.match(r.stderr + r.stdout, /Operation not permitted[\s\S]*mem: 1/, 'a device outside the rules (1:1) cannot be opened');
});

t.test('a bad cgroupsPath or a slice systemd refuses: one clear error, nothing left', async (t) => {
  const id = newId();
  const before = testUnits();
  const bad = bundle(id, ['true'], (s) => {
    s.linux!.cgroupsPath = '/pocrun/x';
  });
  let r = rt.run(['--systemd-cgroup', 'run', '--bundle', bad.dir, id]);
  t.equal(r.status, 1);
  t.match(r.stderr, /^pocrun: config.json \/linux\/cgroupsPath: "\/pocrun\/x" is not of the form "slice:prefix:name"/, 'the field is named');

  const refused = bundle(id, ['true'], () => {}, 'bad name.slice');
  r = rt.run(['--systemd-cgroup', 'run', '--bundle', refused.dir, id]);
  t.equal(r.status, 1);
  t.match(
    r.stderr,
    new RegExp(`^pocrun: systemd: start unit ${PREFIX}-${id}.scope: StartTransientUnit: Invalid unit name 'bad name.slice' \\[org.freedesktop.DBus.Error.InvalidArgs\\]\\n$`),
    "systemd's refusal, with the unit",
  );
  t.notOk(existsSync(join(rt.root, id)), 'no state');
  t.same(testUnits(), before, 'no unit');

  // A file the scope's cgroup refuses, after systemd started it: the unit is stopped, the error (one line) names
  // the field, with no warning of the clean-up before it.
  const unwritable = bundle(id, ['true'], (s) => {
    s.linux!.resources = { unified: { 'memory.nosuch': '1' } };
  });
  r = rt.run(['--systemd-cgroup', 'run', '--bundle', unwritable.dir, id]);
  t.equal(r.status, 1);
  t.match(r.stderr, /^pocrun: config.json \/linux\/resources\/unified\/memory.nosuch: cgroup \/\S+: write memory.nosuch=1: No such file or directory\n$/, 'the field, in one line');
  t.notOk(existsSync(join(rt.root, id)), 'no state');
  t.same(testUnits(), before, 'no unit');
});

t.test('a pocrun killed in the middle of create leaves what delete --force removes, unit included', async (t) => {
  const killedAt = (step: string) => {
    const id = newId();
    const b = bundle(id, ['true']);
    const r = rt.run(['--systemd-cgroup', 'create', '--bundle', b.dir, id], { env: { ...process.env, POCRUN_DEBUG_KILL_AT: step } });
    t.equal(r.signal, 'SIGKILL', `killed at "${step}"`);
    return { id, unit: `${PREFIX}-${id}.scope`, dir: `/sys/fs/cgroup/system.slice/${PREFIX}-${id}.scope` };
  };

  // Once the scope is made, before the init is cloned: the helper dies with its pocrun, the scope is empty, and
  // systemd stops it by itself; the state is left for delete --force.
  let c = killedAt('systemd scope started');
  t.equal(rt.state(c.id).status, 'creating');
  rt.ok(['delete', '--force', c.id]);
  t.equal(show(c.unit, 'LoadState').LoadState, 'not-found', 'no unit');
  t.notOk(existsSync(join(rt.root, c.id)), 'no state');

  // Once the init waits for start: the scope holds it, and only delete --force ends them.
  c = killedAt('created');
  t.equal(show(c.unit, 'ActiveState').ActiveState, 'active', 'the scope is there');
  const procs = read(c.dir, 'cgroup.procs').split('\n').filter(Boolean).map(Number);
  t.equal(procs.length, 1, 'with the init in it');
  rt.ok(['delete', '--force', c.id]);
  t.equal(show(c.unit, 'LoadState').LoadState, 'not-found', 'delete --force stopped the unit');
  t.ok(procs.every(isDead), 'the init is gone');
  t.notOk(existsSync(c.dir), 'and the cgroup');
  t.notOk(existsSync(join(rt.root, c.id)), 'and the state');
});

t.test("Kubernetes' layout: containers in a kubepods-besteffort-pod<uid>.slice made as kubelet makes it", async (t) => {
  const uid = `0a1b${process.pid}`; // kubelet writes the pod uid with "_" for "-"; any [a-z0-9_] will do
  const pod = `kubepods-besteffort-pod${uid}.slice`;
  // kubelet makes each level as a transient slice (libcontainer's systemd manager), parents first.
  for (const slice of ['kubepods.slice', 'kubepods-besteffort.slice', pod]) {
    const r = spawnSync('busctl', ['call', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1', 'org.freedesktop.systemd1.Manager',
      'StartTransientUnit', 'ssa(sv)a(sa(sv))', slice, 'replace', '3', 'Description', 's', `kubelet-style ${slice}`,
      'MemoryAccounting', 'b', 'true', 'TasksAccounting', 'b', 'true', '0'], { encoding: 'utf8' });
    t.equal(r.status, 0, `${slice}: ${r.stderr}`);
  }
  t.teardown(() => void systemctl('stop', 'kubepods.slice'));
  const ids = [newId(), newId()];
  for (const id of ids) {
    const b = bundle(id, ['sleep', '1000'], () => {}, pod);
    rt.ok(['--systemd-cgroup', 'run', '-d', '--bundle', b.dir, id]);
  }
  const path = `/kubepods.slice/kubepods-besteffort.slice/${pod}`;
  for (const id of ids) {
    t.equal(readFileSync(`/proc/${rt.state(id).pid}/cgroup`, 'utf8'), `0::${path}/${PREFIX}-${id}.scope\n`, `${id} is in the pod's slice`);
    t.equal(show(`${PREFIX}-${id}.scope`, 'Slice').Slice, pod);
  }
  t.equal(show(pod, 'ControlGroup').ControlGroup, path, "the pod slice's cgroup");
  t.match(systemctl('status', pod), new RegExp(`${PREFIX}-${ids[0]}.scope[\\s\\S]*${PREFIX}-${ids[1]}.scope`), 'systemctl status of the pod lists both scopes');
  for (const id of ids) rt.ok(['delete', '-f', id]);
  t.same(testUnits().filter((u) => u.startsWith(PREFIX)), [], 'the scopes are gone; the slices are kubelet\'s');
  systemctl('stop', 'kubepods.slice');
});

t.test('nothing left behind: no unit, state, cgroup or process', async (t) => {
  t.same(testUnits(), [], 'no unit of these tests is loaded');
  residue(t);
});
