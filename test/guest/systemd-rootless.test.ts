/**
 * Rootless --systemd-cgroup, as runc's rootless systemd driver: an unprivileged user's container gets a scope from
 * the user's own systemd (systemd --user, started by logind for a lingering user, asked on the user's bus), in
 * the subtree logind delegates to it (cpu, memory and pids on Debian 12), and its limits hold there. Runs only in
 * the guest, where systemd is the init: scripts/test.sh test/guest/systemd-rootless.test.ts.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, POCRUN, Runtime, setup, stateDirs } from '../helpers/runtime.js';
import { chownTree, makeTestUser, toRootless } from '../helpers/rootless.js';
import type { Spec } from '../../src/spec/generated/config.js';

const MB = 1024 * 1024;
const { work } = setup();
const user = makeTestUser(work);
const shared = join(work, 'bundles');
mkdirSync(shared, { mode: 0o755 });
spawnSync('chmod', ['755', work]);

// The user's manager, as a login (or lingering) starts it: user@UID.service, its runtime directory and bus.
const runDir = `/run/user/${user.uid}`;
const busEnv = { XDG_RUNTIME_DIR: runDir, DBUS_SESSION_BUS_ADDRESS: `unix:path=${runDir}/bus` };
const manager = `/user.slice/user-${user.uid}.slice/user@${user.uid}.service`;
t.teardown(() => {
  spawnSync('loginctl', ['disable-linger', user.name]);
  spawnSync('systemctl', ['stop', `user@${user.uid}.service`]);
  user.remove();
});
spawnSync('loginctl', ['enable-linger', user.name]);
spawnSync('systemctl', ['start', `user@${user.uid}.service`]);
for (let i = 0; i < 600 && !existsSync(`${runDir}/bus`); i++) spawnSync('sleep', ['0.1']);

const rt = new Runtime(shared, POCRUN, user.prefix(busEnv), join(user.runtimeDir, 'pocrun'));
let n = 0;
const newId = () => `sdu${process.pid}-${n++}`;

function bundle(change: (s: Spec) => void) {
  const b = makeBundle(shared, (s) => {
    Object.assign(s, toRootless(s, user));
    change(s);
  });
  chownTree(b.dir, user.uid, user.gid);
  return b;
}

/** `systemctl --user show` of the user's manager, as an object. */
function show(unit: string, ...props: string[]): Record<string, string> {
  const r = user.run('systemctl', ['--user', '--no-pager', 'show', unit, ...props.flatMap((p) => ['-p', p])], { extraEnv: busEnv });
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
const read = (path: string) => readFileSync(path, 'utf8').trim();

t.test("the user's systemd runs, with cpu, memory and pids delegated", async (t) => {
  t.equal(process.env.POC_GUEST, '1', 'POC_GUEST=1: this file runs in the guest, never on the host');
  t.ok(existsSync(`${runDir}/bus`), `the user's bus (${runDir}/bus)`);
  t.same(read(`/sys/fs/cgroup${manager}/cgroup.controllers`).split(' ').sort(), ['cpu', 'memory', 'pids']);
  t.match(JSON.parse(rt.ok(['features'])).linux.cgroup, { systemd: true, systemdUser: true }, 'features says so');
});

t.test("run -d: a scope of the user's manager in user.slice, with its limits; update, pause, ps, delete", async (t) => {
  const id = newId();
  const unit = `pocrun-${id}.scope`;
  const cgroup = `${manager}/user.slice/${unit}`;
  const b = bundle((s) => {
    s.process!.args = ['sleep', '1000'];
    s.linux!.resources = { memory: { limit: 64 * MB }, pids: { limit: 32 }, cpu: { quota: 50000, period: 100000 } };
  });
  rt.ok(['--systemd-cgroup', 'run', '-d', '--bundle', b.dir, id]);
  t.teardown(() => void rt.run(['delete', '-f', id]));
  const pid = rt.state(id).pid;
  t.same(
    show(unit, 'ActiveState', 'Delegate', 'Slice', 'ControlGroup', 'MemoryMax', 'TasksMax', 'CPUQuotaPerSecUSec'),
    { ActiveState: 'active', Delegate: 'yes', Slice: 'user.slice', ControlGroup: cgroup, MemoryMax: String(64 * MB), TasksMax: '32', CPUQuotaPerSecUSec: '500ms' },
    "systemctl --user show: the scope, in the user's manager",
  );
  t.equal(read(`/proc/${pid}/cgroup`), `0::${cgroup}`, "the init is in the scope's cgroup");
  const dir = `/sys/fs/cgroup${cgroup}`;
  t.same([read(`${dir}/memory.max`), read(`${dir}/pids.max`), read(`${dir}/cpu.max`)], [String(64 * MB), '32', '50000 100000'], 'the limits, in the files');
  t.equal(JSON.parse(readFileSync(join(rt.root, id, 'state.json'), 'utf8')).systemd.unit, unit, 'the state record names the unit');

  rt.ok(['update', '--memory', '128m', id]);
  t.equal(show(unit, 'MemoryMax').MemoryMax, String(128 * MB), 'update: systemd has the new value');
  t.equal(read(`${dir}/memory.max`), String(128 * MB), 'and so does the file');
  rt.ok(['pause', id]);
  t.equal(read(`${dir}/cgroup.freeze`), '1', 'pause freezes the scope');
  rt.ok(['resume', id]);
  t.same(JSON.parse(rt.ok(['ps', '--format', 'json', id])), [pid], 'ps finds the init through the scope');

  rt.ok(['delete', '-f', id]);
  t.equal(show(unit, 'LoadState').LoadState, 'not-found', 'delete stopped the unit');
  t.notOk(existsSync(dir), 'and its cgroup is gone');
});

t.test("without the user's bus: one clear error, and nothing is made", async (t) => {
  const id = newId();
  const b = bundle((s) => { s.process!.args = ['true']; });
  const elsewhere = new Runtime(shared, POCRUN, user.prefix({ XDG_RUNTIME_DIR: user.runtimeDir }), join(user.runtimeDir, 'pocrun'));
  const r = elsewhere.run(['--systemd-cgroup', 'run', '--bundle', b.dir, id]);
  t.equal(r.status, 1);
  t.match(r.stderr, /^pocrun: --systemd-cgroup: rootless, the user's systemd \(systemd --user\) is asked on its bus, and there is none \(no .*\/bus\): log in, or have root run "loginctl enable-linger /);
  t.same(stateDirs(rt.root), [], 'no state');
});

t.test('nothing left behind: no unit, state or process of the containers', async (t) => {
  const units = user.run('systemctl', ['--user', '--no-pager', 'list-units', '--all', '--plain', '--no-legend', 'pocrun-*'], { extraEnv: busEnv }).stdout.trim();
  t.equal(units, '', 'no pocrun unit in the user\'s manager');
  t.same(stateDirs(rt.root), [], 'no state');
  t.same(user.processes().filter((p) => !/systemd|\(sd-pam\)|dbus/.test(p)), [], 'no process of the user but its manager');
});
