/**
 * Rootless on cgroup v2 with systemd's delegation, for a lingering user (logind starts its own systemd,
 * user@UID.service, with cpu, memory and pids delegated on Debian 12): pocrun --systemd-cgroup, as runc's rootless
 * systemd driver (a scope of the user's systemd, asked on the user's bus); pocrun's cgroupfs driver in a scope the
 * user's systemd delegates (limits, pause, update, events, ps; exec into a created container); poc's limits
 * (-m, --cpus, --pids-limit) in a scope of the user's systemd (in user.slice, or the slice --cgroup-parent names),
 * with the cgroupfs manager below a --cgroup-parent the user's systemd delegates, and their refusal by name without
 * it. Runs only in
 * the guest, where systemd is the init: scripts/test.sh test/guest/systemd-rootless.test.ts.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, POCRUN, Runtime, setup, stateDirs } from '../helpers/runtime.js';
import { chownTree, makeTestUser, toRootless } from '../helpers/rootless.js';
import { POC } from '../helpers/poc.js';
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

t.test("the cgroupfs driver in a cgroup the user's systemd delegates: limits, exec before start, pause, update, events, ps", async (t) => {
  // As a command of the user's runs in a scope with Delegate=yes (`systemd-run --user --scope`): the caller moves to
  // a leaf of it (cgroup v2 has no processes beside children with controllers), the container's cgroup is the
  // leaf's sibling, named in config.json once the scope is known.
  const id = newId();
  const b = bundle((s) => {
    s.process!.args = ['sleep', '1000'];
    s.linux!.cgroupsPath = '@DELEG@/c1';
    s.linux!.resources = { memory: { limit: 64 * MB }, pids: { limit: 20 } };
  });
  const script = [
    'D=$(sed -n "s/^0:://p" /proc/self/cgroup)',
    'mkdir /sys/fs/cgroup$D/leaf && echo $$ > /sys/fs/cgroup$D/leaf/cgroup.procs',
    `sed -i "s|@DELEG@|$D|" ${b.dir}/config.json`,
    `exec ${POCRUN} --root ${rt.root} create --bundle ${b.dir} ${id}`,
  ].join(' && ');
  // (The init inherits create's stdio: not a pipe, which would stay open while it lives.)
  const created = user.run('systemd-run', ['--user', '--scope', '--quiet', '-p', 'Delegate=yes', '--', 'sh', '-c', script], { extraEnv: busEnv, stdio: 'ignore' });
  t.equal(created.status, 0, 'create in the delegated scope');
  t.teardown(() => void rt.run(['delete', '-f', id]));
  const cgroup = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')).linux.cgroupsPath as string;
  t.match(cgroup, new RegExp(`^${manager.replace(/[.]/g, '\\.')}/.*\\.scope/c1$`), "the container's cgroup, in the user's delegated scope");
  const pid = rt.state(id).pid;
  t.equal(read(`/proc/${pid}/cgroup`), `0::${cgroup}`, 'the init is in it');
  const dir = `/sys/fs/cgroup${cgroup}`;
  t.same([read(`${dir}/memory.max`), read(`${dir}/pids.max`)], [String(64 * MB), '20'], 'the limits');
  const early = rt.run(['exec', id, 'sh', '-c', 'echo exec-before-start $(id -u)']);
  t.equal(early.stdout, 'exec-before-start 0\n', `exec into the created container: ${early.stderr}`);
  rt.ok(['start', id]);
  rt.ok(['pause', id]);
  t.equal(read(`${dir}/cgroup.freeze`), '1', 'pause freezes it');
  t.equal(rt.state(id).status, 'paused');
  rt.ok(['resume', id]);
  rt.ok(['update', '--memory', '32m', id]);
  t.equal(read(`${dir}/memory.max`), String(32 * MB), 'update');
  t.match(JSON.parse(rt.ok(['events', '--stats', id])), { type: 'stats', data: { memory: { usage: { limit: 32 * MB } } } }, 'events --stats');
  t.same(JSON.parse(rt.ok(['ps', '--format', 'json', id])), [pid], "ps: the cgroup's processes");
  rt.ok(['delete', '-f', id]);
  t.notOk(existsSync(dir), 'delete removed the cgroup');
});

t.test("poc: -m, --cpus and --pids-limit in a scope of the user's systemd, stats; refused by name without its bus", async (t) => {
  const poc = (args: string[], extraEnv: Record<string, string> = busEnv) => {
    const r = user.run(POC, args, { extraEnv, timeout: 300_000 });
    return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  };
  const init = poc(['init', '--busybox']);
  t.equal(init.status, 0, `init --busybox: ${init.stderr}`);
  const run = poc(['run', '-d', '--name', 'lim', '--network', 'none', '-m', '64m', '--cpus', '0.5', '--pids-limit', '20', 'busybox', 'sleep', '1000']);
  t.equal(run.status, 0, `run -d with limits: ${run.stderr}`);
  const id = run.stdout.trim();
  const unit = `poc-${id}.scope`;
  t.teardown(() => void poc(['rm', '-f', 'lim']));
  t.same(
    show(unit, 'ActiveState', 'Slice', 'MemoryMax', 'TasksMax', 'CPUQuotaPerSecUSec'),
    { ActiveState: 'active', Slice: 'user.slice', MemoryMax: String(64 * MB), TasksMax: '20', CPUQuotaPerSecUSec: '500ms' },
    "systemctl --user show: the container's scope, with its limits",
  );
  const dir = `/sys/fs/cgroup${manager}/user.slice/${unit}`;
  t.same([read(`${dir}/memory.max`), read(`${dir}/pids.max`), read(`${dir}/cpu.max`)], [String(64 * MB), '20', '50000 100000'], 'in the files');
  const stats = poc(['stats', '--no-stream', '--format', 'json', 'lim']);
  t.equal(stats.status, 0, `stats reads the scope: ${stats.stderr}`);
  t.match(JSON.parse(stats.stdout || '[]'), [{ name: 'lim', memoryLimit: 64 * MB, pids: 1 }], 'stats: the limit, and the one process');
  const rm = poc(['rm', '-f', 'lim']);
  t.equal(rm.status, 0, `rm -f: ${rm.stderr}`);
  t.equal(show(unit, 'LoadState').LoadState, 'not-found', 'the scope is gone');

  // --cgroup-parent with the systemd manager: a slice of the user's systemd, which makes it for the scope.
  const sliced = poc(['run', '-d', '--name', 'sliced', '--network', 'none', '--cgroup-parent', 'mine.slice', '-m', '32m', 'busybox', 'sleep', '1000']);
  t.equal(sliced.status, 0, `run -d --cgroup-parent mine.slice: ${sliced.stderr}`);
  const slicedUnit = `poc-${sliced.stdout.trim()}.scope`;
  t.teardown(() => void poc(['rm', '-f', 'sliced']));
  t.same(show(slicedUnit, 'ActiveState', 'Slice', 'MemoryMax'), { ActiveState: 'active', Slice: 'mine.slice', MemoryMax: String(32 * MB) }, 'the scope is in mine.slice, with its limit');
  t.equal(read(`/sys/fs/cgroup${manager}/mine.slice/${slicedUnit}/memory.max`), String(32 * MB), 'in the files');
  t.equal(poc(['rm', '-f', 'sliced']).status, 0);
  t.equal(show(slicedUnit, 'LoadState').LoadState, 'not-found', 'the scope is gone');

  // The cgroupfs manager, as rootless podman's: a cgroup below a --cgroup-parent the user owns, here a scope its
  // systemd delegates (`systemd-run --user --scope -p Delegate=yes`), poc run from a leaf of it (cgroup v2 lets a
  // process move only below a cgroup the mover may write).
  const script = [
    'D=$(sed -n "s/^0:://p" /proc/self/cgroup)',
    'mkdir /sys/fs/cgroup$D/leaf && echo $$ > /sys/fs/cgroup$D/leaf/cgroup.procs',
    `exec ${POC} run -d --name cfs --network none --cgroup-manager cgroupfs --cgroup-parent $D -m 48m --pids-limit 10 busybox sleep 1000`,
  ].join(' && ');
  const cfs = user.run('systemd-run', ['--user', '--scope', '--quiet', '-p', 'Delegate=yes', '--', 'sh', '-c', script], { extraEnv: busEnv, timeout: 300_000 });
  t.equal(cfs.status, 0, `run -d --cgroup-manager cgroupfs --cgroup-parent (a delegated scope): ${cfs.stderr}`);
  t.teardown(() => void poc(['rm', '-f', 'cfs']));
  const cfsId = String(cfs.stdout).trim();
  const cfsPid = (JSON.parse(poc(['inspect', 'cfs']).stdout) as Array<{ State: { Pid: number } }>)[0]!.State.Pid;
  const cgroup = read(`/proc/${cfsPid}/cgroup`).replace(/^0::/, '');
  t.match(cgroup, new RegExp(`^${manager.replace(/[.]/g, '\\.')}/.*\\.scope/${cfsId}$`), "the container's cgroup: PARENT/ID, in the user's delegated scope");
  t.same([read(`/sys/fs/cgroup${cgroup}/memory.max`), read(`/sys/fs/cgroup${cgroup}/pids.max`)], [String(48 * MB), '10'], 'the limits');
  const cfsStats = poc(['stats', '--no-stream', '--format', 'json', 'cfs']);
  t.match(JSON.parse(cfsStats.stdout || '[]'), [{ name: 'cfs', memoryLimit: 48 * MB }], `stats reads it: ${cfsStats.stderr}`);
  t.equal(poc(['rm', '-f', 'cfs']).status, 0);
  t.notOk(existsSync(`/sys/fs/cgroup${cgroup}`), 'rm removed the cgroup');
  // Without the user's bus nothing is delegated: the flag is refused by name, and nothing is made.
  const refused = poc(['run', '--rm', '--network', 'none', '--pids-limit', '5', 'busybox', 'true'], { XDG_RUNTIME_DIR: user.runtimeDir });
  t.not(refused.status, 0);
  t.match(refused.stderr, /^poc: --pids-limit needs a cgroup of the container's own, which a rootless container gets only from a cgroup delegated to the user: on this host none is/);
  t.equal(poc(['ps', '-a', '-q']).stdout, '', 'no container is left');
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
