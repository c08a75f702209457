/**
 * poc on a cgroup v2 host (guest only): -m, --cpus and --pids-limit land in the container's v2 files, and
 * `poc stats` and `poc top` read them. poc has no pause/unpause. One container per cgroup manager (systemd, the
 * default where systemd runs, as podman's: a scope poc-<id>.scope in machine.slice; and cgroupfs: /poc/<id>), the
 * busybox image built offline.
 */
import t from 'tap';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

if (!existsSync('/sys/fs/cgroup/cgroup.controllers')) throw new Error('this suite needs a cgroup v2 host: run it with scripts/guest/test.sh');

const POC = join(import.meta.dirname, '../../dist/poc');
const work = mkdtempSync('/tmp/poc-v2-');
const env: NodeJS.ProcessEnv = { ...process.env, POC_ROOT: join(work, 'root') };

function ok(args: string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(POC, args, { encoding: 'utf8', timeout: 120_000, env, ...opts });
  if (r.status !== 0) throw new Error(`poc ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return String(r.stdout);
}

t.teardown(() => {
  spawnSync(POC, ['prune'], { env, stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
});

const MANAGERS = [
  ['systemd', (id: string) => `/sys/fs/cgroup/machine.slice/poc-${id}.scope`],
  ['cgroupfs', (id: string) => `/sys/fs/cgroup/poc/${id}`],
] as const;

t.test('the busybox image', async () => void ok(['init', '--busybox']));

for (const [manager, cgroupDir] of MANAGERS) {
  t.test(`--cgroup-manager ${manager}: -m, --cpus, --pids-limit in the v2 files; stats and top read them; rm removes the cgroup`, async (t) => {
    const id = ok(['run', '-d', '--network', 'none', '--cgroup-manager', manager, '-m', '64m', '--cpus', '1.5', '--pids-limit', '20', 'busybox', 'sleep', '1000']).trim();
    const dir = cgroupDir(id);
    const file = (f: string) => readFileSync(`${dir}/${f}`, 'utf8').trim();
    t.equal(file('memory.max'), String(64 * 1024 * 1024), '-m → memory.max');
    t.equal(file('cpu.max'), '150000 100000', '--cpus → cpu.max');
    t.equal(file('pids.max'), '20', '--pids-limit → pids.max');
    if (manager === 'systemd') {
      const show = spawnSync('systemctl', ['show', `poc-${id}.scope`, '-p', 'Delegate', '-p', 'MemoryMax', '-p', 'TasksMax', '-p', 'CPUQuotaPerSecUSec'], { encoding: 'utf8' }).stdout;
      const props = Object.fromEntries(show.trim().split('\n').map((l) => l.split('=')));
      t.same(props, { Delegate: 'yes', MemoryMax: String(64 * 1024 * 1024), TasksMax: '20', CPUQuotaPerSecUSec: '1.500000s' }, 'systemd knows the limits');
    }
    t.equal(ok(['exec', id, 'cat', '/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/pids.max']), `${64 * 1024 * 1024}\n20\n`, 'seen from inside');
    const stats = JSON.parse(ok(['stats', '--no-stream', '--format', 'json', id]));
    t.equal(stats[0].memoryLimit, 64 * 1024 * 1024, 'stats: the memory limit');
    t.ok(stats[0].memoryUsage > 0, 'stats: memory usage from memory.current');
    t.equal(stats[0].pids, 1, 'stats: pids.current');
    t.match(ok(['top', id]), /^UID\s+PID\s+PPID\s+TIME\s+CMD\n0\s+\d+\s+\d+\s+\d\d:\d\d:\d\d\s+sleep 1000\n$/, 'top: the processes of the cgroup');
    ok(['rm', '-f', id]);
    t.notOk(existsSync(dir), 'rm removes the cgroup');
    if (manager === 'systemd') t.match(spawnSync('systemctl', ['show', `poc-${id}.scope`, '-p', 'LoadState'], { encoding: 'utf8' }).stdout, /^LoadState=not-found$/m, 'and the unit');
  });
}
