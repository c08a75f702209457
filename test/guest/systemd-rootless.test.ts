/**
 * poc rootless with the cgroupfs manager below a --cgroup-parent that the user's own systemd delegates (a scope of
 * its with Delegate=yes, as `systemd-run --user --scope -p Delegate=yes` makes one), for a lingering user (logind
 * starts its systemd, user@UID.service, with cpu, memory and pids delegated on Debian 12). Runs only in the guest,
 * where systemd is the init: scripts/test.sh test/guest/systemd-rootless.test.ts.
 *
 * The rest of poc rootless on cgroup v2 with systemd (limits in a scope of the user's systemd, stats, a slice as
 * --cgroup-parent, the refusals without its bus) is test/integration/poc-rootless.test.ts's, which runs in the
 * guest too; pocrun's is test/integration/rootless.test.ts's.
 */
import t from 'tap';
import { chmodSync, existsSync, readFileSync } from 'node:fs';
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
const read = (path: string) => readFileSync(path, 'utf8').trim();

t.test("poc --cgroup-manager cgroupfs below a scope the user's systemd delegates: limits, stats, the cgroup gone with rm", async (t) => {
  const poc = (args: string[], extraEnv: Record<string, string> = busEnv) => {
    const r = user.run(POC, args, { extraEnv, timeout: 300_000 });
    return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  };
  const init = poc(['init', '--busybox']);
  t.equal(init.status, 0, `init --busybox: ${init.stderr}`);

  // As rootless podman's cgroupfs manager: a cgroup below a --cgroup-parent the user owns, here a scope its
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
  t.equal(poc(['ps', '-a', '-q']).stdout, '', 'no container is left');
});

t.test('nothing left behind: no unit or process of the containers', async (t) => {
  const units = user.run('systemctl', ['--user', '--no-pager', 'list-units', '--all', '--plain', '--no-legend', 'poc-*']).stdout.trim();
  t.equal(units, '', "no poc unit in the user's manager");
  t.same(user.processes().filter((p) => !p.endsWith('<defunct>')), [], 'no process of the user but its systemd\'s');
});
