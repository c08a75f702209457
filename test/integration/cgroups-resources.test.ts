/**
 * linux.resources at create, `update`, `events` and `ps` on real v1 cgroups (all under /pocrun-test/, made by
 * makeBundle). Each effect is read from inside the container or from the host's cgroup files.
 */
import t from 'tap';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { makeBundle, setup, top } from '../helpers/runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';

const { work, rt, residue } = setup();
let n = 0;

function running(t: { teardown: (f: () => void) => void }, change: (s: Spec) => void = () => {}) {
  const id = `cg${n++}`;
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sleep', '1000'];
    change(s);
  });
  rt.ok(['run', '-d', '--bundle', b.dir, id]);
  t.teardown(() => void rt.run(['delete', '-f', id]));
  const cgroup = b.spec.linux!.cgroupsPath!;
  const host = (controller: string, file: string) => readFileSync(`/sys/fs/cgroup/${controller}${cgroup}/${file}`, 'utf8').trim();
  return { id, pid: rt.state(id).pid, cgroup, host };
}

const MB = 1024 * 1024;

t.test('resources at create are visible inside the container', async (t) => {
  const c = running(t, (s) => {
    s.linux!.resources = {
      ...s.linux!.resources,
      memory: { limit: 64 * MB, reservation: 32 * MB },
      cpu: { quota: 20000, period: 100000, shares: 512 },
      pids: { limit: 32 },
    };
  });
  const inside = rt.ok(['exec', c.id, 'sh', '-c', [
    'cat /sys/fs/cgroup/memory/memory.limit_in_bytes', 'cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes',
    'cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us', 'cat /sys/fs/cgroup/cpu/cpu.cfs_period_us', 'cat /sys/fs/cgroup/cpu/cpu.shares',
    'cat /sys/fs/cgroup/pids/pids.max',
  ].join('; ')]);
  t.equal(inside, `${64 * MB}\n${32 * MB}\n20000\n100000\n512\n32\n`);
  t.equal(c.host('memory', 'memory.limit_in_bytes'), String(64 * MB), 'the same on the host');
});

t.test('update with runc\'s flags changes the host cgroup files', async (t) => {
  const c = running(t);
  rt.ok(['update', '--memory', '256m', '--memory-reservation', '128m', '--cpu-shares', '256', '--cpu-quota', '30000', '--cpu-period', '60000',
    '--pids-limit', '64', '--cpuset-cpus', '0', '--cpuset-mems', '0', c.id]);
  t.equal(c.host('memory', 'memory.limit_in_bytes'), String(256 * MB));
  t.equal(c.host('memory', 'memory.soft_limit_in_bytes'), String(128 * MB));
  t.equal(c.host('cpu', 'cpu.shares'), '256');
  t.equal(c.host('cpu', 'cpu.cfs_quota_us'), '30000');
  t.equal(c.host('cpu', 'cpu.cfs_period_us'), '60000');
  t.equal(c.host('pids', 'pids.max'), '64');
  t.equal(c.host('cpuset', 'cpuset.cpus'), '0');
  t.equal(rt.ok(['exec', c.id, 'cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes']), `${256 * MB}\n`, 'and inside');
  // runc's cpu flag is --cpu-share; both spellings work. 0 leaves a value as it is; -1 is unlimited.
  rt.ok(['update', '--cpu-share', '300', '--memory', '0', '--pids-limit', '-1', c.id]);
  t.equal(c.host('cpu', 'cpu.shares'), '300');
  t.equal(c.host('memory', 'memory.limit_in_bytes'), String(256 * MB));
  t.equal(c.host('pids', 'pids.max'), 'max');
  if (existsSync(`/sys/fs/cgroup/memory${c.cgroup}/memory.memsw.limit_in_bytes`)) {
    rt.ok(['update', '--memory', '100m', '--memory-swap', '200m', c.id]);
    t.equal(c.host('memory', 'memory.memsw.limit_in_bytes'), String(200 * MB));
  }

  const file = join(work, 'resources.json');
  writeFileSync(file, JSON.stringify({ memory: { limit: 96 * MB }, pids: { limit: 48 }, cpu: { quota: 10000 } }));
  rt.ok(['update', '--resources', file, c.id]);
  t.equal(c.host('memory', 'memory.limit_in_bytes'), String(96 * MB));
  t.equal(c.host('pids', 'pids.max'), '48');
  t.equal(c.host('cpu', 'cpu.cfs_quota_us'), '10000');
  rt.ok(['update', '-r', '-', c.id], { input: JSON.stringify({ pids: { limit: 24 } }) });
  t.equal(c.host('pids', 'pids.max'), '24', '--resources - reads stdin');

  const bad = rt.run(['update', '-r', '-', c.id], { input: '{"memory":{"limit":"lots"}}' });
  t.not(bad.status, 0);
  t.match(bad.stderr, /update --resources \(stdin\): \/memory\/limit: must be an integer/);
  const badSize = rt.run(['update', '--memory', '12zb', c.id]);
  t.match(badSize.stderr, /invalid value for --memory: invalid size: "12zb"/);
  const below = rt.run(['update', '--memory', '4k', c.id]);
  t.not(below.status, 0, 'a limit the kernel refuses is an error');
  t.match(below.stderr, /memory.limit_in_bytes/);
});

t.test('--pids-limit is enforced: a fork bomb stops at the limit', async (t) => {
  const c = running(t);
  rt.ok(['update', '--pids-limit', '10', c.id]);
  // Forks 30 sleepers: the fork past the limit fails, and busybox sh gives up there ("can't fork", status 2).
  const r = rt.run(['exec', c.id, 'sh', '-c', 'for i in $(seq 1 30); do sleep 30 >/dev/null 2>&1 & done; echo all forked']);
  t.not(r.status, 0);
  t.match(r.stderr, /can't fork/);
  t.notMatch(r.stdout, /all forked/);
  t.ok(Number(/max (\d+)/.exec(c.host('pids', 'pids.events'))?.[1]) > 0, 'pids.events counts the refused forks');
  t.ok(Number(c.host('pids', 'pids.current')) <= 10, 'pids.current within pids.max');
  const pids = JSON.parse(rt.ok(['ps', '--format', 'json', c.id]));
  t.ok(pids.length >= 8 && pids.length <= 10, `the init and the sleepers that could start: ${pids.length}`);
});

t.test('a memory limit is enforced: the OOM killer ends what goes past it, and events reports it', async (t) => {
  const c = running(t, (s) => { s.linux!.resources = { ...s.linux!.resources, memory: { limit: 32 * MB } }; });
  const events = spawn(join(top, 'dist/pocrun'), ['--root', rt.root, 'events', '--interval', '100ms', c.id], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  events.stdout.on('data', (d) => (out += d));
  const ended = new Promise<number | null>((resolve) => events.on('exit', (code) => resolve(code)));
  const r = rt.run(['exec', c.id, 'sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived']);
  t.equal(r.status, 137, 'killed (SIGKILL) by the OOM killer');
  t.notMatch(r.stdout, /survived/);
  t.match(c.host('memory', 'memory.oom_control'), /oom_kill [1-9]/);
  spawnSync('sleep', ['0.4']);
  events.kill('SIGINT');
  t.equal(await ended, 0, 'events stops cleanly on SIGINT');
  const lines = out.trim().split('\n').map((l) => JSON.parse(l));
  t.ok(lines.some((e) => e.type === 'oom' && e.id === c.id), 'an oom event');
  t.ok(lines.filter((e) => e.type === 'stats').length >= 2, 'stats every interval');
});

t.test('events --stats prints one stats event in runc\'s shape', async (t) => {
  const c = running(t, (s) => { s.linux!.resources = { ...s.linux!.resources, memory: { limit: 64 * MB }, pids: { limit: 50 } }; });
  rt.ok(['exec', c.id, 'sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done']); // some CPU time
  const text = rt.ok(['events', '--stats', c.id]);
  t.equal(text.split('\n').length, 2, 'one line');
  const e = JSON.parse(text);
  t.same(Object.keys(e), ['type', 'id', 'data']);
  t.equal(e.type, 'stats');
  t.equal(e.id, c.id);
  t.ok(e.data.cpu.usage.total > 0, 'cpu.usage.total');
  t.ok(Array.isArray(e.data.cpu.usage.percpu));
  t.equal(e.data.memory.usage.limit, 64 * MB, 'memory.usage.limit');
  t.ok(e.data.memory.usage.usage > 0, 'memory.usage.usage');
  // At least the init; a helper that exited a moment ago counts until its parent (here pid 1) reaps it.
  t.ok(e.data.pids.current >= 1, 'pids.current');
  t.equal(e.data.pids.limit, 50, 'pids.limit');
  for (const key of ['cpu', 'cpuset', 'memory', 'pids', 'blkio', 'hugetlb']) t.ok(key in e.data, key);
  t.ok(e.data.cpuset.cpus.length > 0);
  const stopped = rt.run(['events', '--stats', 'nope']);
  t.match(stopped.stderr, /container "nope" does not exist/);
});

t.test('events streams until the container stops, or its reader goes away', async (t) => {
  const c = running(t);
  const head = spawnSync('sh', ['-c', `${join(top, 'dist/pocrun')} --root ${rt.root} events --interval 50ms ${c.id} | head -c 20`], { encoding: 'utf8', timeout: 10_000 });
  t.equal(head.stdout, '{"type":"stats","id"', 'a closed pipe ends the stream (no hang)');
  t.equal(head.signal, null);
  const events = spawn(join(top, 'dist/pocrun'), ['--root', rt.root, 'events', '--interval', '50ms', c.id], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  events.stdout.on('data', (d) => (out += d));
  const ended = new Promise<number | null>((resolve) => events.on('exit', (code) => resolve(code)));
  spawnSync('sleep', ['0.3']);
  rt.ok(['kill', c.id, 'KILL']);
  t.equal(await ended, 0);
  t.ok(out.trim().split('\n').length >= 2);
  const bad = rt.run(['events', '--interval', '5 parsecs', c.id]);
  t.match(bad.stderr, /invalid duration "5 parsecs"/);
  t.match(rt.run(['events', '--stats', c.id]).stderr, /is not running/);
});

t.test('ps: json is the host pids; table is ps(1) output for them', async (t) => {
  const c = running(t);
  const pidFile = join(work, 'ps.pid');
  const file = join(work, 'ps-out');
  const fd = openSync(file, 'w');
  spawnSync(join(top, 'dist/pocrun'), ['--root', rt.root, 'exec', '-d', '--pid-file', pidFile, c.id, 'sleep', '999'], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exec = Number(readFileSync(pidFile, 'utf8'));
  t.same(JSON.parse(rt.ok(['ps', '--format', 'json', c.id])), [c.pid, exec].sort((a, b) => a - b));
  const table = rt.ok(['ps', c.id]).split('\n').filter(Boolean);
  t.match(table[0]!, /^UID\s+PID\s+PPID/, 'ps -ef by default');
  t.equal(table.length, 3, 'header, init and the exec');
  t.match(table.join('\n'), /sleep 1000/);
  t.match(table.join('\n'), /sleep 999/);
  const custom = rt.ok(['ps', c.id, '--', '-o', 'pid,args']).split('\n').filter(Boolean);
  t.same(custom.map((l) => l.trim().split(/\s+/)[0]), ['PID', ...[c.pid, exec].sort((a, b) => a - b).map(String)]);
  const noPid = rt.run(['ps', c.id, '-o', 'args']);
  t.match(noPid.stderr, /couldn't find the PID field/);
  t.match(rt.run(['ps', '--format', 'yaml', c.id]).stderr, /invalid --format "yaml"/);
});

t.test('update of a stopped container fails', async (t) => {
  const c = running(t);
  rt.ok(['kill', c.id, 'KILL']);
  rt.waitStatus(c.id, 'stopped');
  const r = rt.run(['update', '--pids-limit', '5', c.id]);
  t.not(r.status, 0);
  t.match(r.stderr, /cannot update container "cg\d+": container not running \(it is stopped\)/);
});

t.test('nothing left behind', async (t) => residue(t));
