/**
 * pocrun run by an unprivileged user (rootless), as runc runs for one: a user the test makes (with subuid and
 * subgid ranges, and one without), the lifecycle, exec, ps and the front's commands as that user, id maps of one
 * id (written by pocrun) and of the subordinate ranges (newuidmap/newgidmap), no cgroup where none can be had
 * and clear errors where one is needed, a network namespace with lo up, mounts in the user namespace, and nothing
 * left behind in the user's directories.
 *
 * It runs on the host and in the cgroup v2 guest (scripts/test.sh runs it there too), and what the host gives a
 * user decides which cgroups the containers have (USER_DELEGATION, a probe of the host, never a skip):
 * - cgroup v1, or no systemd (the development host): none of their own, as with runc; limits, pause and update
 *   are clear errors, and a delegated cgroup is one root makes and hands over, as a v1 host would;
 * - cgroup v2 with systemd (the guest): the user lingers, so its own systemd (user@UID.service) runs with the
 *   controllers logind delegates, and the containers the host tests without a cgroup are created with
 *   --systemd-cgroup in scopes of it (as rootless podman's systemd manager and runc's do), where their limits,
 *   pause and update hold; the delegated cgroup is a scope of that systemd with Delegate=yes. The user without
 *   subordinate ids does not linger: it shows the refusals there too.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, POCRUN, POCRUN_TS, Runtime, setup, stateDirs, testCgroupParents, TEST_CGROUP_PARENT } from '../helpers/runtime.js';
import { chownTree, makeTestUser, toRootless, USER_DELEGATION, userResidue, type TestUser } from '../helpers/rootless.js';
import { cveRegressionTests } from '../helpers/cve.js';
import type { Spec } from '../../src/spec/generated/config.js';

const { work, residue } = setup();
const user = makeTestUser(work, { linger: true });
const plain = makeTestUser(work, { subids: false });
t.teardown(() => {
  user.remove();
  plain.remove();
});
/** The user's own systemd, where the host delegates it a subtree (the guest); undefined elsewhere. */
const manager = user.manager;
/** How the user's containers get a cgroup of their own where they can: a scope of the user's systemd. */
const ownCgroup = manager ? ['--systemd-cgroup'] : [];
/** What the user's systemd put in its runtime directory (/run/user/UID) before any test ran. */
const runtimeDirAtStart = readdirSync(user.runtimeDir);
const MB = 1024 * 1024;
const read = (path: string) => readFileSync(path, 'utf8').trim();

/** `systemctl --user show` of a unit of the user's systemd, as an object. */
function showUnit(unit: string, ...props: string[]): Record<string, string> {
  const r = user.run('systemctl', ['--user', '--no-pager', 'show', unit, ...props.flatMap((p) => ['-p', p])]);
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
// The bundles live where the users can reach them.
const shared = join(work, 'bundles');
mkdirSync(shared, { mode: 0o755 });
spawnSync('chmod', ['755', work]);

/** pocrun as `who`, with its state under the user's XDG_RUNTIME_DIR (the default root, given explicitly). */
const runtimeOf = (who: TestUser) => new Runtime(shared, POCRUN, who.prefix(), join(who.runtimeDir, 'pocrun'));
const rt = runtimeOf(user);
let n = 0;

/** A bundle of `who`'s, its config the test spec made rootless (as `pocrun spec --rootless`), then `change`d. */
function bundle(who: TestUser, change: (s: Spec) => void = () => {}) {
  const b = makeBundle(shared, (s) => {
    Object.assign(s, toRootless(s, who));
    change(s);
  });
  chownTree(b.dir, who.uid, who.gid);
  return b;
}

function inContainer(who: TestUser, script: string, change: (s: Spec) => void = () => {}) {
  const b = bundle(who, (s) => {
    s.process!.args = ['sh', '-c', script];
    change(s);
  });
  return { ...runtimeOf(who).run(['run', '--bundle', b.dir, `r${n++}`]), bundle: b };
}

t.test('the users: one with subuid and subgid ranges, one without; the first one\'s systemd where the host delegates', async (t) => {
  t.ok(user.uid > 0 && user.subuid && user.subgid, `${user.name}: uid ${user.uid}, ranges ${JSON.stringify([user.subuid, user.subgid])}`);
  t.equal(plain.subuid, undefined, `${plain.name} has no subuid range`);
  t.equal(user.run('id', ['-u']).stdout.trim(), String(user.uid), 'commands run as the user');
  t.equal(USER_DELEGATION, process.env.POC_GUEST === '1', 'the guest delegates to users (systemd, cgroup v2), this host does not: the probe agrees');
  t.match(JSON.parse(rt.ok(['features'])).linux.cgroup, { systemdUser: USER_DELEGATION }, 'features says whether --systemd-cgroup works rootless');
  if (manager) {
    t.ok(existsSync(join(user.runtimeDir, 'bus')), `the user's bus (${user.runtimeDir}/bus)`);
    t.same(read(`/sys/fs/cgroup${manager.cgroup}/cgroup.controllers`).split(' ').sort(), ['cpu', 'memory', 'pids'], "cpu, memory and pids delegated to the user's systemd");
  }
});

t.test('spec --rootless is a boolean and writes what runc spec --rootless writes for the user', async (t) => {
  const dir = join(shared, 'spec');
  mkdirSync(join(dir, 'pocrun'), { recursive: true });
  mkdirSync(join(dir, 'runc'));
  chownTree(dir, user.uid, user.gid);
  const ours = user.run(POCRUN, ['spec', '--rootless', '--bundle', join(dir, 'pocrun')]);
  t.equal(ours.status, 0, ours.stderr);
  const theirs = user.run('runc', ['spec', '--rootless', '--bundle', join(dir, 'runc')]);
  t.equal(theirs.status, 0, theirs.stderr);
  const [a, b] = ['pocrun', 'runc'].map((d) => JSON.parse(readFileSync(join(dir, d, 'config.json'), 'utf8')) as Spec);
  t.same(a!.linux!.uidMappings, [{ containerID: 0, hostID: user.uid, size: 1 }]);
  t.same(a!.linux!.gidMappings, [{ containerID: 0, hostID: user.gid, size: 1 }]);
  t.same(a!.linux!.uidMappings, b!.linux!.uidMappings, 'uid map as runc');
  t.same(a!.linux!.gidMappings, b!.linux!.gidMappings, 'gid map as runc');
  // runc 1.1's default spec has no cgroup namespace; pocrun's (as runc 1.2's) has one.
  const types = (s: Spec) => s.linux!.namespaces!.map((ns) => ns.type).filter((x) => x !== 'cgroup').sort();
  t.same(types(a!), types(b!), 'the same namespaces: a user namespace, no network namespace');
  t.ok(types(a!).includes('user') && !types(a!).includes('network'));
  t.same(a!.mounts!.find((m) => m.destination === '/sys'), b!.mounts!.find((m) => m.destination === '/sys'), '/sys bound from the host');
  t.notOk(a!.linux!.resources, 'no resources');
  t.notOk(JSON.stringify(a!.mounts).match(/"(uid|gid)=/), 'no uid= or gid= mount options');
  const again = user.run(POCRUN, ['spec', '--rootless', '--bundle', join(dir, 'pocrun')]);
  t.not(again.status, 0);
  t.match(again.stderr, /config.json exists/);
});

t.test('the default root is $XDG_RUNTIME_DIR/pocrun, for the front and the TypeScript program alike', async (t) => {
  const b = bundle(user, (s) => { s.process!.args = ['sleep', '100']; });
  const id = `dflt${n++}`;
  // The init inherits create's stdio: not a pipe, which would stay open while it lives.
  const created = user.run(POCRUN, ['create', '--bundle', b.dir, id], { stdio: 'ignore' });
  t.equal(created.status, 0);
  const dir = join(user.runtimeDir, 'pocrun', id);
  t.ok(existsSync(join(dir, 'state.json')), `state under ${dir}`);
  t.equal(statSync(dir).uid, user.uid, "the user's");
  const front = JSON.parse(user.run(POCRUN, ['state', id]).stdout);
  const ts = JSON.parse(user.run(POCRUN_TS, ['state', id]).stdout);
  t.same(front, ts, 'the front and the TypeScript program read the same state');
  t.equal(front.status, 'created');
  t.equal(front.owner, user.name, 'owner: the user');
  t.match(user.run(POCRUN, ['list']).stdout, new RegExp(`${id}\\s+\\d+\\s+created\\s+.*${user.name}`));
  const bad = user.run(POCRUN, ['--rootless', 'maybe', 'state', id]);
  t.not(bad.status, 0);
  t.match(bad.stderr, /invalid --rootless "maybe": use true, false or auto/);
  t.equal(user.run(POCRUN, ['--rootless', 'true', 'delete', '--force', id]).status, 0);
  t.notOk(existsSync(dir), 'deleted');
});

t.test(`lifecycle as the user: create, state, start, exec, ps, kill, delete; ${manager ? "a scope of the user's systemd, pause, update, stats" : 'no cgroup of its own'}`, async (t) => {
  const b = bundle(user, (s) => { s.process!.args = ['sh', '-c', 'echo started > /tmp/started; exec sleep 100']; });
  const id = `life${n++}`;
  rt.ok([...ownCgroup, 'create', '--bundle', b.dir, '--pid-file', join(user.runtimeDir, 'pid'), id]);
  const created = rt.state(id);
  t.equal(created.status, 'created');
  t.equal(Number(readFileSync(join(user.runtimeDir, 'pid'), 'utf8')), created.pid, 'pid file');
  t.equal(statSync(`/proc/${created.pid}`).uid, user.uid, "the init runs as the user's uid on the host");
  t.notOk(existsSync(join(b.rootfs, 'tmp/started')), 'not started yet');
  // The waiting init is non-dumpable, its memory the container's user namespace's: the user who owns that
  // namespace reaches its namespace files, as root reaches a root container's (runc and crun allow this too).
  const early = rt.run(['exec', id, 'sh', '-c', 'echo $$; id -u; cat /proc/1/cmdline | tr "\\0" " "']);
  t.equal(early.status, 0, `exec into the created container: ${early.stderr}`);
  t.match(early.stdout, /^\d+\n0\n\S*pocrun-init/, 'exec into the created container: in its pid namespace, root, beside the waiting init');
  t.same(JSON.parse(rt.ok(['ps', '--format', 'json', id])), [created.pid], 'ps of the created container (its pid namespace)');
  t.equal(rt.state(id).status, 'created', 'still created');
  rt.ok(['start', id]);
  t.equal(rt.state(id).status, 'running');
  for (let i = 0; i < 100 && !existsSync(join(b.rootfs, 'tmp/started')); i++) spawnSync('sleep', ['0.02']);
  t.ok(existsSync(join(b.rootfs, 'tmp/started')), 'the process ran');
  t.equal(statSync(join(b.rootfs, 'tmp/started')).uid, user.uid, "root in the container is the user's uid");
  const cgroup = readFileSync(`/proc/${created.pid}/cgroup`, 'utf8');
  const scope = manager && `${manager.cgroup}/user.slice/pocrun-${id}.scope`;
  if (scope) t.equal(cgroup, `0::${scope}\n`, "the init is in its scope, in the user's systemd's user.slice");
  else t.equal(cgroup, readFileSync(`/proc/${process.pid}/cgroup`, 'utf8'), "no cgroup of its own: its caller's (this test's)");

  const exec = rt.run(['exec', id, 'sh', '-c', 'id -u; cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/setgroups']);
  t.equal(exec.status, 0, exec.stderr);
  t.match(exec.stdout, new RegExp(`^0\\n\\s+0\\s+${user.uid}\\s+1\\n\\s+0\\s+${user.gid}\\s+1\\ndeny\\n$`), 'exec joins the user namespace: root there, the one-id maps, setgroups denied');
  const status = rt.run(['exec', id, 'sh', '-c', 'exit 5']);
  t.equal(status.status, 5, "exec's status");
  const ps = JSON.parse(rt.ok(['ps', '--format', 'json', id]));
  t.same(ps, [created.pid], 'ps: the processes of its pid namespace');
  t.match(rt.ok(['ps', id]), new RegExp(`\\n\\S+\\s+${created.pid}\\s.*sleep 100`), 'ps -ef filtered to them');

  if (scope) {
    // In its scope: what the host refuses for want of a cgroup.
    rt.ok(['pause', id]);
    t.equal(rt.state(id).status, 'paused');
    t.equal(read(`/sys/fs/cgroup${scope}/cgroup.freeze`), '1', 'pause freezes the scope');
    rt.ok(['resume', id]);
    rt.ok(['update', '--memory', '100m', '--pids-limit', '50', id]);
    t.same([read(`/sys/fs/cgroup${scope}/memory.max`), read(`/sys/fs/cgroup${scope}/pids.max`)], [String(100 * MB), '50'], 'update sets the limits');
    t.equal(showUnit(`pocrun-${id}.scope`, 'MemoryMax').MemoryMax, String(100 * MB), "and the user's systemd has them");
    const stats = JSON.parse(rt.ok(['events', '--stats', id]));
    t.match(stats, { type: 'stats', data: { memory: { usage: { limit: 100 * MB } }, pids: { current: 1, limit: 50 } } }, 'events --stats reads the scope');
  } else {
    // What needs a cgroup says so, naming why.
    const pause = rt.run(['pause', id]);
    t.not(pause.status, 0);
    t.match(pause.stderr, /no freezer: it has no cgroup of its own \(rootless: no cgroup is delegated to this user/);
    const update = rt.run(['update', '--memory', '100m', id]);
    t.not(update.status, 0);
    t.match(update.stderr, /cannot set resources: it has no cgroup of its own/);
    const stats = rt.run(['events', '--stats', id]);
    t.match(stats.stderr, /no statistics: it has no cgroup of its own/);
  }
  t.equal(rt.state(id).status, 'running', 'still running');

  t.not(rt.run(['delete', id]).status, 0, 'delete refuses a running container');
  rt.ok(['kill', id, 'KILL']);
  rt.waitStatus(id, 'stopped');
  t.match(rt.run(['kill', id]).stderr, /container not running/);
  rt.ok(['kill', '--all', id, 'KILL']);
  rt.ok(['delete', id]);
  t.match(rt.run(['state', id]).stderr, /does not exist/);
  if (scope) {
    t.equal(showUnit(`pocrun-${id}.scope`, 'LoadState').LoadState, 'not-found', 'delete stopped the scope');
    t.notOk(existsSync(`/sys/fs/cgroup${scope}`), 'and its cgroup is gone');
  }
});

t.test(`kill --all signals every process of the ${manager ? 'scope' : 'pid namespace'}; delete --force of a running one`, async (t) => {
  const b = bundle(user, (s) => { s.process!.args = ['sh', '-c', 'sleep 200 & sleep 100; echo never']; });
  const id = `all${n++}`;
  rt.ok([...ownCgroup, 'run', '-d', '--bundle', b.dir, id]);
  let pids: number[] = [];
  for (let i = 0; i < 100 && pids.length < 3; i++) {
    pids = JSON.parse(rt.ok(['ps', '--format', 'json', id]));
    spawnSync('sleep', ['0.02']);
  }
  t.equal(pids.length, 3, 'sh and its two sleeps');
  // KILL: the pid namespace's init (sh) ignores TERM without a handler.
  rt.ok(['kill', '--all', id, 'KILL']);
  rt.waitStatus(id, 'stopped');
  rt.ok(['delete', id]);
  const force = `force${n++}`;
  rt.ok([...ownCgroup, 'run', '-d', '--bundle', b.dir, force]);
  const pid = rt.state(force).pid;
  rt.ok(['delete', '--force', force]);
  t.notOk(existsSync(join(rt.root, force)), 'deleted');
  t.ok(!existsSync(`/proc/${pid}`) || /\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')), 'its init is gone');
});

t.test(`resources: ${manager ? "limits in a scope of the user's systemd; " : ''}without a delegated cgroup, a clear error naming the field`, async (t) => {
  // The user without subordinate ids does not linger: no cgroup is delegated to it, on any host.
  const none = runtimeOf(plain);
  for (const [change, field] of [
    [(s: Spec) => { s.linux!.resources = { memory: { limit: 64 << 20 } }; }, '/linux/resources/memory/limit'],
    [(s: Spec) => { s.linux!.resources = { pids: { limit: 10 } }; }, '/linux/resources/pids/limit'],
  ] as const) {
    const b = bundle(plain, (s) => { s.process!.args = ['true']; change(s); });
    const r = none.run(['run', '--bundle', b.dir, `res${n++}`]);
    t.not(r.status, 0);
    t.match(r.stderr, new RegExp(`config.json ${field}: cannot set this limit: rootless: this user cannot make the container's cgroup \\(.*Permission denied\\)`));
  }
  const scopeless = bundle(plain, (s) => { s.process!.args = ['true']; });
  const systemd = none.run(['--systemd-cgroup', 'run', '--bundle', scopeless.dir, `res${n++}`]);
  t.not(systemd.status, 0);
  const why = !existsSync('/run/systemd/system')
    ? /^pocrun: --systemd-cgroup: systemd is not running on this host/
    : USER_DELEGATION
      ? /^pocrun: --systemd-cgroup: rootless, the user's systemd \(systemd --user\) is asked on its bus, and there is none \(no .*\/bus\): log in, or have root run "loginctl enable-linger /
      : /^pocrun: --systemd-cgroup: rootless, a systemd scope needs cgroup v2/;
  t.match(systemd.stderr, why, '--systemd-cgroup without a systemd of the user\'s');
  const named = bundle(plain, (s) => { s.process!.args = ['true']; s.linux!.cgroupsPath = '/mine/c1'; });
  const r = none.run(['run', '--bundle', named.dir, `res${n++}`]);
  t.match(r.stderr, /config.json \/linux\/cgroupsPath: rootless: this user cannot make the container's cgroup/);
  const devicesOnly = inContainer(plain, 'echo ok', (s) => { s.linux!.resources = { devices: [{ allow: false, access: 'rwm' }] }; });
  t.equal(devicesOnly.stdout, 'ok\n', `device rules alone need no cgroup, as with runc: ${devicesOnly.stderr}`);
  t.same(stateDirs(none.root), [], 'no state left');
  if (!manager) return;

  // The user's bus named by an address of nothing (rootless podman's rule: its unix:path= socket must exist):
  // refused before anything is asked of systemd or made, in one line.
  const lost = new Runtime(shared, POCRUN, user.prefix({ DBUS_SESSION_BUS_ADDRESS: 'unix:path=/nonexistent/bus' }), rt.root);
  const nobus = lost.run(['--systemd-cgroup', 'run', '--bundle', bundle(user, (s) => { s.process!.args = ['true']; }).dir, `res${n++}`]);
  t.not(nobus.status, 0);
  t.match(nobus.stderr, /^pocrun: --systemd-cgroup: rootless, the user's systemd \(systemd --user\) is asked on its bus, and there is none \(DBUS_SESSION_BUS_ADDRESS names \/nonexistent\/bus, which does not exist\)/, 'a bus address of nothing');
  t.equal(nobus.stderr.trim().split('\n').length, 1, 'one line');
  t.same(stateDirs(rt.root), [], 'no state left');

  // The lingering user's scope: the limits in systemd's properties and in the files, update, the unit gone.
  const id = `lim${n++}`;
  const unit = `pocrun-${id}.scope`;
  const dir = `/sys/fs/cgroup${manager.cgroup}/user.slice/${unit}`;
  const b = bundle(user, (s) => {
    s.process!.args = ['sleep', '1000'];
    s.linux!.resources = { memory: { limit: 64 * MB }, pids: { limit: 32 }, cpu: { quota: 50000, period: 100000 } };
  });
  rt.ok(['--systemd-cgroup', 'run', '-d', '--bundle', b.dir, id]);
  t.teardown(() => void rt.run(['delete', '-f', id]));
  t.same(
    showUnit(unit, 'ActiveState', 'Delegate', 'Slice', 'MemoryMax', 'TasksMax', 'CPUQuotaPerSecUSec'),
    { ActiveState: 'active', Delegate: 'yes', Slice: 'user.slice', MemoryMax: String(64 * MB), TasksMax: '32', CPUQuotaPerSecUSec: '500ms' },
    "systemctl --user show: the scope, in the user's systemd, with the limits",
  );
  t.same([read(`${dir}/memory.max`), read(`${dir}/pids.max`), read(`${dir}/cpu.max`)], [String(64 * MB), '32', '50000 100000'], 'the limits, in the files');
  t.equal(JSON.parse(readFileSync(join(rt.root, id, 'state.json'), 'utf8')).systemd.unit, unit, 'the state record names the unit');
  rt.ok(['delete', '-f', id]);
  t.equal(showUnit(unit, 'LoadState').LoadState, 'not-found', 'delete stopped the unit');
  // A controller the user's systemd is not given (cpuset): refused by name, nothing made.
  const cpuset = bundle(user, (s) => { s.process!.args = ['true']; s.linux!.resources = { cpu: { cpus: '0' } }; });
  const refused = rt.run(['--systemd-cgroup', 'run', '--bundle', cpuset.dir, `lim${n++}`]);
  t.not(refused.status, 0);
  t.match(refused.stderr, /^pocrun: config.json \/linux\/resources\/cpu\/cpus: .*\(the cpuset controller is not enabled for this cgroup; its cgroup.controllers: cpu memory pids\)\n$/, 'one line, naming the field and the controller');
  t.same(stateDirs(rt.root), [], 'no state left');
});

t.test("a cgroup delegated to the user: limits, exec before start, pause, update, events, ps and delete work rootless with pocrun's own driver", async (t) => {
  // Delegated as a user's login gets one, the user's commands running in a leaf of it, so that the container's
  // cgroup (c1, the leaf's sibling) is made and joined within the user's own subtree.
  const b = bundle(user, (s) => {
    s.process!.args = ['sleep', '100'];
    s.linux!.cgroupsPath = '@DELEG@/c1';
    s.linux!.resources = { memory: { limit: 64 << 20 }, pids: { limit: 20 } };
  });
  const id = `deleg${n++}`;
  let dirs: string[];
  if (manager) {
    // A scope of the user's systemd with Delegate=yes, as `systemd-run --user --scope` makes one: the command moves
    // itself to a leaf, and names the container's cgroup in config.json once it knows the scope's.
    const script = [
      'D=$(sed -n "s/^0:://p" /proc/self/cgroup)',
      'mkdir /sys/fs/cgroup$D/leaf && echo $$ > /sys/fs/cgroup$D/leaf/cgroup.procs',
      `sed -i "s|@DELEG@|$D|" ${b.dir}/config.json`,
      `exec ${POCRUN} --root ${rt.root} create --bundle ${b.dir} ${id}`,
    ].join(' && ');
    // (The init inherits create's stdio: not a pipe, which would stay open while it lives.)
    const created = user.run('systemd-run', ['--user', '--scope', '--quiet', '-p', 'Delegate=yes', '--', 'sh', '-c', script], { stdio: 'ignore' });
    t.equal(created.status, 0, 'create in the delegated scope');
    const path = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')).linux.cgroupsPath as string;
    t.match(path, new RegExp(`^${manager.cgroup.replace(/[.]/g, '\\.')}/.*\\.scope/c1$`), "the container's cgroup, in the user's delegated scope");
    dirs = [join('/sys/fs/cgroup', path, '..')];
  } else {
    // Nothing delegates here: root makes a subtree and hands it over, in each v1 hierarchy.
    const deleg = `${TEST_CGROUP_PARENT}/rootless-${n++}`;
    // (Not the hybrid host's cgroup2 mount nor systemd's named hierarchy: pocrun's v1 driver uses neither.)
    dirs = testCgroupParents().filter((p) => !/\/(unified|systemd)\//.test(p)).map((p) => join(p, '..', '..', deleg));
    for (const d of dirs) {
      mkdirSync(join(d, 'leaf'), { recursive: true });
      // v1 cpuset: a new cgroup has no CPUs and memory nodes (a process cannot join it) until given its parent's.
      if (existsSync(join(d, 'cpuset.cpus'))) {
        const parts = join(d, 'leaf').split('/');
        for (let i = parts.indexOf('cpuset') + 2; i <= parts.length; i++) {
          const dir = parts.slice(0, i).join('/');
          for (const f of ['cpuset.cpus', 'cpuset.mems']) {
            if (!readFileSync(join(dir, f), 'utf8').trim()) writeFileSync(join(dir, f), readFileSync(join(dir, '..', f), 'utf8'));
          }
        }
      }
      chownTree(d, user.uid, user.gid);
    }
    t.teardown(() => {
      for (const d of dirs) for (const sub of ['leaf', 'c1', '']) spawnSync('rmdir', [join(d, sub)]);
    });
    writeFileSync(join(b.dir, 'config.json'), readFileSync(join(b.dir, 'config.json'), 'utf8').replace('@DELEG@', `/${deleg}`));
    const into = dirs.map((d) => `echo $$ > ${join(d, 'leaf', 'cgroup.procs')}`).join(' && ');
    new Runtime(shared, POCRUN, ['sh', '-c', `${into} && exec "$@"`, 'sh', ...user.prefix()], rt.root).ok(['create', '--bundle', b.dir, id]);
  }
  t.teardown(() => void rt.run(['delete', '--force', id]));
  const cgroupsPath = JSON.parse(readFileSync(join(b.dir, 'config.json'), 'utf8')).linux.cgroupsPath as string;
  const pid = rt.state(id).pid;
  t.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`:${cgroupsPath.replace(/[.]/g, '\\.')}\n`), "the init is in the container's cgroup");
  const memoryDir = dirs.map((d) => join(d, 'c1')).find((d) => existsSync(join(d, 'memory.limit_in_bytes')) || existsSync(join(d, 'memory.max')))!;
  const memFile = existsSync(join(memoryDir, 'memory.max')) ? 'memory.max' : 'memory.limit_in_bytes';
  t.equal(read(join(memoryDir, memFile)), String(64 << 20), 'the memory limit');
  const early = rt.run(['exec', id, 'sh', '-c', 'echo exec-before-start $(id -u)']);
  t.equal(early.stdout, 'exec-before-start 0\n', `exec into the created container: ${early.stderr}`);
  rt.ok(['start', id]);
  rt.ok(['pause', id]);
  t.equal(rt.state(id).status, 'paused');
  rt.ok(['resume', id]);
  t.equal(rt.state(id).status, 'running');
  rt.ok(['update', '--memory', '32m', id]);
  t.equal(read(join(memoryDir, memFile)), String(32 << 20), 'update');
  const stats = JSON.parse(rt.ok(['events', '--stats', id]));
  t.match(stats, { type: 'stats', id, data: { memory: { usage: { limit: 32 << 20 } } } }, `events --stats: ${JSON.stringify(stats.data).slice(0, 300)}`);
  t.same(JSON.parse(rt.ok(['ps', '--format', 'json', id])), [pid], 'ps: the cgroup\'s processes');
  rt.ok(['delete', '--force', id]);
  t.notOk(dirs.some((d) => existsSync(join(d, 'c1'))), 'the cgroup is removed');
});

t.test('subordinate ids: newuidmap and newgidmap map the ranges; files get the mapped owners', async (t) => {
  const { subuid, subgid } = user;
  const r = inContainer(user, 'cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f; chown 1000:1000 /tmp/f; id; cat /proc/self/setgroups', (s) => {
    s.linux!.uidMappings = [{ containerID: 0, hostID: user.uid, size: 1 }, { containerID: 1, hostID: subuid!.start, size: subuid!.count }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: user.gid, size: 1 }, { containerID: 1, hostID: subgid!.start, size: subgid!.count }];
    s.process!.user!.additionalGids = [10, 1000];
    s.process!.capabilities = { bounding: ['CAP_CHOWN'], effective: ['CAP_CHOWN'], permitted: ['CAP_CHOWN'] };
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^\\s+0\\s+${user.uid}\\s+1\\n\\s+1\\s+${subuid!.start}\\s+${subuid!.count}\\n\\s+0\\s+${user.gid}\\s+1\\n\\s+1\\s+${subgid!.start}\\s+${subgid!.count}\\n`));
  t.match(r.stdout, /uid=0\(root\) gid=0\(root\) groups=10,1000/, 'additional groups: setgroups is allowed with newgidmap');
  t.match(r.stdout, /allow\n$/);
  const st = statSync(join(r.bundle.rootfs, 'tmp/f'));
  t.same([st.uid, st.gid], [subuid!.start + 999, subgid!.start + 999], 'container uid 1000 is subuid start + 999 on the host');
  // A range that is not the user's is refused by newuidmap, and the error names the field.
  const theirs = inContainer(user, 'true', (s) => {
    s.linux!.uidMappings = [{ containerID: 0, hostID: user.uid, size: 1 }, { containerID: 1, hostID: 1, size: 10 }];
  });
  t.not(theirs.status, 0);
  t.match(theirs.stderr, /config.json \/linux\/uidMappings: rootless: newuidmap \d+ 0 \d+ 1 1 1 10 failed \(exit status 1: .*\); the ranges must be this user's in \/etc\/subuid/);
  t.same(stateDirs(rt.root), []);
});

t.test('a user without subordinate ids: the one-id map works, more is a clear error', async (t) => {
  const ok = inContainer(plain, 'id -u; cat /proc/self/uid_map');
  t.equal(ok.status, 0, ok.stderr);
  t.match(ok.stdout, new RegExp(`^0\\n\\s+0\\s+${plain.uid}\\s+1\\n$`));
  const more = inContainer(plain, 'true', (s) => {
    s.linux!.gidMappings = [{ containerID: 0, hostID: plain.gid, size: 1 }, { containerID: 1, hostID: 200000, size: 1000 }];
  });
  t.not(more.status, 0);
  t.match(more.stderr, /config.json \/linux\/gidMappings: rootless: newgidmap .* failed .*the ranges must be this user's in \/etc\/subgid, or the map only the user's own gid/);
  const groups = inContainer(plain, 'true', (s) => { s.process!.user!.additionalGids = [5]; });
  t.not(groups.status, 0);
  t.match(groups.stderr, /\/process\/user\/additionalGids: setgroups is denied in this user namespace/);
  t.same(stateDirs(join(plain.runtimeDir, 'pocrun')), []);
});

t.test('a network namespace with lo up, sysfs of its own, and the mount options a user namespace allows', async (t) => {
  const host = join(shared, 'hostdir');
  mkdirSync(host);
  writeFileSync(join(host, 'file'), 'from the host\n');
  chownTree(host, user.uid, user.gid);
  const r = inContainer(user, [
    'ip -o link show lo | grep -o "<[^>]*>"; ip -o addr show lo | grep -o "inet [0-9./]*"; ls /sys/class/net',
    'for p in /sys /tmp /data /data-rw /dev/shm /dev/mqueue /dev/pts; do grep " $p " /proc/self/mountinfo | cut -d" " -f5,6; done',
    'cat /data/file; touch /data/x 2>/dev/null || echo ro-refused; touch /data-rw/y && echo rw-ok',
  ].join('; '), (s) => {
    s.linux!.namespaces!.push({ type: 'network' });
    s.mounts = s.mounts!.filter((m) => m.destination !== '/sys');
    s.mounts.push(
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'mode=1777', 'nosuid', 'nodev', 'noexec', 'strictatime'] },
      { destination: '/data', type: 'bind', source: host, options: ['rbind', 'ro', 'nosuid', 'nodev', 'rprivate'] },
      { destination: '/data-rw', type: 'none', source: host, options: ['bind', 'noexec', 'relatime'] },
    );
  });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^<LOOPBACK,UP,LOWER_UP>\ninet 127\.0\.0\.1\/8\nlo\n/, 'lo is up, and the only interface');
  t.match(r.stdout, /\n\/sys ro,nosuid,nodev,noexec,relatime\n/, 'sysfs of its network namespace');
  t.match(r.stdout, /\n\/tmp rw,nosuid,nodev,noexec\n/, 'tmpfs with its options (strictatime)');
  t.match(r.stdout, /\n\/data ro,nosuid,nodev,[^\n]*\n/, 'a read-only bind');
  t.match(r.stdout, /\n\/data-rw rw,[^\n]*noexec[^\n]*\n/, 'a bind with noexec');
  t.match(r.stdout, /\/dev\/shm rw,nosuid,nodev,noexec/);
  t.match(r.stdout, /\/dev\/mqueue rw,nosuid,nodev,noexec/);
  t.match(r.stdout, /\/dev\/pts rw,nosuid,noexec/);
  t.match(r.stdout, /from the host\nro-refused\nrw-ok\n$/);
});

t.test('what a user namespace does not allow is refused, naming the field', async (t) => {
  const loop = inContainer(user, 'true', (s) => { s.mounts!.push({ destination: '/mnt', type: 'ext4', source: '/dev/vda', options: ['ro'] }); });
  t.not(loop.status, 0);
  t.match(loop.stderr, /\(config.json \/mounts\/7\): mount \/dev\/vda \(ext4\) on \/mnt: Operation not permitted/);
  const sysfs = inContainer(user, 'true', (s) => {
    // sysfs needs a network namespace of the user namespace's own: runc's rootless spec binds /sys instead.
    s.mounts = s.mounts!.filter((m) => m.destination !== '/sys');
    s.mounts.push({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['ro'] });
  });
  t.not(sysfs.status, 0);
  t.match(sysfs.stderr, /\(config.json \/mounts\/\d+\): mount sysfs on \/sys: Operation not permitted/);
  const host = inContainer(user, 'true', (s) => {
    s.linux!.namespaces = s.linux!.namespaces!.filter((ns) => ns.type !== 'user');
    delete s.linux!.uidMappings;
    delete s.linux!.gidMappings;
  });
  t.not(host.status, 0, 'without a user namespace an unprivileged user can make none of the others');
  t.match(host.stderr, /Operation not permitted/);
  t.same(stateDirs(rt.root), []);
});

// The known runc escapes, attempted against a rootless pocrun. The observer is what a process in the container
// is: root of its user namespace without CAP_SYS_PTRACE there (the user itself, who owns that namespace, reaches
// the waiting init, as root reaches a root container's: the lifecycle test's exec before start).
cveRegressionTests(t, {
  work: shared,
  rt,
  // With a network namespace of its own, so that /sys is sysfs as in the root tests (not runc's rootless bind).
  makeBundle: (change) => bundle(user, (s) => {
    s.linux!.namespaces!.push({ type: 'network' });
    s.mounts = s.mounts!.map((m) => (m.destination === '/sys' ? { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] } : m));
    change(s);
  }),
  observer: (script, pid) => [
    ...user.prefix(), 'nsenter', '--user', '--preserve-credentials', '--target', String(pid), '--',
    'setpriv', '--bounding-set=-sys_ptrace', '--inh-caps=-sys_ptrace', 'sh', '-c', script,
  ],
  own: (path) => void spawnSync('chown', ['-h', `${user.uid}:${user.gid}`, path]),
  label: 'rootless: ',
});

t.test("nothing left behind: the users' processes, state, mounts; then the users themselves", async (t) => {
  // A detached container's helper exits once the init runs; this machine's pid 1 reaps such zombies late.
  const live = (who: TestUser) => who.processes().filter((p) => !p.endsWith('<defunct>'));
  t.same(live(user), [], `no process of ${user.name}`);
  t.same(live(plain), [], `no process of ${plain.name}`);
  t.same(stateDirs(rt.root), [], 'no state directory under $XDG_RUNTIME_DIR/pocrun');
  // (runc, which the spec test ran, makes its own root there; the user's bus, once first used, dbus-1.)
  t.same(readdirSync(user.runtimeDir).filter((f) => ![...runtimeDirAtStart, 'pocrun', 'pid', 'runc', 'dbus-1'].includes(f)), [], 'nothing else in XDG_RUNTIME_DIR');
  if (manager) {
    const units = user.run('systemctl', ['--user', '--no-pager', 'list-units', '--all', '--plain', '--no-legend', 'pocrun-*']).stdout.trim();
    t.equal(units, '', "no unit of pocrun's left in the user's systemd");
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(shared));
  t.same(mounts, [], 'no mounts');
  user.remove();
  plain.remove();
  t.same(userResidue(user.name), [], 'the user and its ranges are gone');
  t.same(userResidue(plain.name), []);
  rmSync(shared, { recursive: true, force: true });
  residue(t);
});
