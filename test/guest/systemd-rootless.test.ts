/**
 * poc rootless on cgroup v2 with systemd's delegation, for a lingering user (logind starts its own systemd,
 * user@UID.service, with cpu, memory and pids delegated on Debian 12): poc's limits (-m, --cpus, --pids-limit) in a
 * scope of the user's systemd (in user.slice, or the slice --cgroup-parent names), with the cgroupfs manager below a
 * --cgroup-parent the user's systemd delegates, and their refusal by name without it. Runs only in the guest, where
 * systemd is the init: scripts/test.sh test/guest/systemd-rootless.test.ts.
 *
 * pocrun's rootless cases on cgroup v2 with systemd are in test/integration/rootless.test.ts, which runs in the guest
 * too. poc-rootless.test.ts holds these checks as well, for the day it joins the guest run (scripts/test.sh says
 * what keeps it out); this file goes then.
 */
import t from 'tap';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setup } from '../helpers/runtime.js';
import { makeTestUser } from '../helpers/rootless.js';
import { POC } from '../helpers/poc.js';

const MB = 1024 * 1024;
const { work } = setup();
// The user's home is in it: traversable by the user.
chmodSync(work, 0o755);
const user = makeTestUser(work, { linger: true });
t.teardown(() => user.remove());
if (!user.manager) throw new Error("the user's systemd did not start: this file runs in the guest (systemd, cgroup v2)");
const manager = user.manager.cgroup;
const busEnv = user.manager.env;

/** `systemctl --user show` of the user's manager, as an object. */
function show(unit: string, ...props: string[]): Record<string, string> {
  const r = user.run('systemctl', ['--user', '--no-pager', 'show', unit, ...props.flatMap((p) => ['-p', p])]);
  return Object.fromEntries(r.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
const read = (path: string) => readFileSync(path, 'utf8').trim();

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
  // (A runtime directory without a bus, and no bus address: empty is unset for poc and pocrun.)
  const elsewhere = join(work, `nobus-${user.name}`);
  mkdirSync(elsewhere, { mode: 0o700 });
  chownSync(elsewhere, user.uid, user.gid);
  const refused = poc(['run', '--rm', '--network', 'none', '--pids-limit', '5', 'busybox', 'true'], { XDG_RUNTIME_DIR: elsewhere, DBUS_SESSION_BUS_ADDRESS: '' });
  t.not(refused.status, 0);
  t.match(refused.stderr, /^poc: --pids-limit needs a cgroup of the container's own, which a rootless container gets only from a cgroup delegated to the user: on this host none is/);
  t.equal(poc(['ps', '-a', '-q']).stdout, '', 'no container is left');
});


t.test('nothing left behind: no unit or process of the containers', async (t) => {
  const units = user.run('systemctl', ['--user', '--no-pager', 'list-units', '--all', '--plain', '--no-legend', 'poc-*']).stdout.trim();
  t.equal(units, '', "no poc unit in the user's manager");
  t.same(user.processes().filter((p) => !p.endsWith('<defunct>')), [], 'no process of the user but its systemd\'s');
});
