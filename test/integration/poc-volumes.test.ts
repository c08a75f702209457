/**
 * Volumes, restart policies and health checks through the compiled poc, as root, with real containers in a
 * temporary POC_ROOT (all on --network none: nothing here needs the bridge). The image is made here as a docker
 * save archive: the busybox rootfs, a directory /srv/data owned by 1000:1000 with a file in it, a VOLUME there and
 * a HEALTHCHECK, as a Dockerfile would leave them in Config.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { pocIn } from '../helpers/poc.js';
import { buildBusyboxImage, imageRootfs } from '../../src/poc/images/index.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'containers need root');
  process.exit(0);
}

const work = mkdtempSync('/tmp/poc-vol-');
const root = join(work, 'root');
const { poc, ok } = pocIn(root);

const inspect = (ref: string) => JSON.parse(ok(['inspect', ref]))[0];
const volumes = () => ok(['volume', 'ls', '-q']).split('\n').filter(Boolean);
const volumeData = (name: string) => join(root, 'volumes', name, '_data');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const HEALTH_INTERVAL_NS = 200e6;

t.before(async () => {
  const busybox = await buildBusyboxImage({ root });
  const dir = join(work, 'save');
  mkdirSync(join(dir, 'l1'), { recursive: true });
  mkdirSync(join(dir, 'l2'), { recursive: true });
  spawnSync('tar', ['-C', imageRootfs(busybox, { root }), '-cf', join(dir, 'l1/layer.tar'), '.']);
  const src = join(work, 'l2src');
  mkdirSync(join(src, 'srv/data'), { recursive: true });
  writeFileSync(join(src, 'srv/data/seed'), 'from the image\n');
  chownSync(join(src, 'srv/data'), 1000, 1000);
  chmodSync(join(src, 'srv/data'), 0o750);
  spawnSync('tar', ['-C', src, '-cf', join(dir, 'l2/layer.tar'), '.']);
  const config = {
    Env: ['PATH=/bin'],
    Cmd: ['sh'],
    Volumes: { '/srv/data': {} },
    Healthcheck: { Test: ['CMD-SHELL', 'test -e /tmp/healthy && echo fine'], Interval: HEALTH_INTERVAL_NS, Retries: 2 },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ architecture: 'amd64', config }));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['volimg:1'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]));
  spawnSync('tar', ['-C', dir, '-cf', join(work, 'volimg.tar'), 'manifest.json', 'config.json', 'l1', 'l2']);
  ok(['import', join(work, 'volimg.tar')]);
});

t.teardown(() => {
  for (const id of existsSync(join(root, 'containers')) ? readdirSync(join(root, 'containers')) : []) poc(['rm', '-f', id]);
  spawnSync('sh', ['-c', `grep -o ' ${root}[^ ]*' /proc/self/mountinfo | xargs -r -n1 umount -l`]);
  rmSync(work, { recursive: true, force: true });
});

t.test('a named volume: filled from the image on first use, kept after rm, not removable while in use', async (t) => {
  t.equal(ok(['volume', 'create', 'made']), 'made\n');
  const v = JSON.parse(ok(['volume', 'inspect', 'made']))[0];
  t.match(v, { Name: 'made', Driver: 'local', Mountpoint: volumeData('made'), Scope: 'local', Anonymous: false });
  t.equal(ok(['volume', 'create', 'made']), 'made\n', 'creating a known name again is no error (docker)');

  const first = poc(['run', '--name', 'v1', '--network', 'none', '-v', 'db:/srv/data', 'volimg:1', 'sh', '-c', 'cat /srv/data/seed; echo more > /srv/data/new']);
  t.equal(first.status, 0, first.stderr);
  t.equal(first.stdout, 'from the image\n', "the volume holds the image's content at the path");
  const st = statSync(volumeData('db'));
  t.same([st.uid, st.gid, st.mode & 0o7777], [1000, 1000, 0o750], "the directory's owner and mode come from the image");
  t.same(readdirSync(volumeData('db')).sort(), ['new', 'seed']);

  const busy = poc(['volume', 'rm', 'db']);
  t.not(busy.status, 0);
  t.match(busy.stderr, /volume db is in use by container v1/, 'in use, even by a stopped container');
  ok(['rm', 'v1']);
  t.ok(volumes().includes('db'), 'the data outlives the container');

  // Once filled, a volume is the container's: not filled again, even when emptied of the image's file.
  t.equal(ok(['run', '--rm', '--network', 'none', '-v', 'db:/srv/data', 'volimg:1', 'sh', '-c', 'cat /srv/data/new; rm /srv/data/seed']), 'more\n');
  t.equal(ok(['run', '--rm', '--network', 'none', '-v', 'db:/srv/data', 'volimg:1', 'ls', '/srv/data']), 'new\n', 'not filled again');
  t.equal(ok(['run', '--rm', '--network', 'none', '-v', 'fresh:/srv/data:nocopy', 'volimg:1', 'ls', '-A', '/srv/data']), '', 'nocopy: left empty');
  t.equal(ok(['run', '--rm', '--network', 'none', '--mount', 'source=db,target=/srv/data,readonly', 'volimg:1', 'sh', '-c', 'touch /srv/data/x 2>&1; echo $?']).trim().split('\n').at(-1), '1', 'readonly');

  for (const name of ['db', 'made', 'fresh']) t.equal(ok(['volume', 'rm', name]), `${name}\n`);
  t.same(volumes(), []);
  t.same(readdirSync(join(root, 'volumes')), [], 'nothing of them is left');
});

t.test("anonymous volumes: the image's VOLUME and -v /path; rm keeps them, rm -v and --rm remove them", async (t) => {
  t.equal(ok(['run', '--name', 'a1', '--network', 'none', 'volimg:1', 'cat', '/srv/data/seed']), 'from the image\n', 'filled from the image too');
  const mounts = inspect('a1').Mounts;
  t.equal(mounts.length, 1);
  t.match(mounts[0], { Type: 'volume', Destination: '/srv/data', Name: /^[0-9a-f]{64}$/, Source: volumeData(mounts[0].Name), RW: true });
  ok(['rm', 'a1']);
  t.same(volumes(), [mounts[0].Name], 'rm without -v keeps it');
  t.equal(ok(['volume', 'prune']), `Deleted Volumes:\n${mounts[0].Name}\n`, 'prune removes unused anonymous volumes');

  ok(['run', '--name', 'a2', '--network', 'none', '-v', '/cache', '-v', 'keep:/keep', 'volimg:1', 'true']);
  t.equal(volumes().length, 3, '/cache, the image VOLUME, and the named one');
  t.equal(ok(['volume', 'prune']), '', 'prune leaves the volumes of a stopped container alone');
  ok(['rm', '-v', 'a2']);
  t.same(volumes(), ['keep'], 'rm -v removed the anonymous ones, not the named one');

  ok(['run', '--rm', '--network', 'none', '-v', '/cache', 'volimg:1', 'true']);
  t.same(volumes(), ['keep'], '--rm removed its anonymous volumes');
  t.equal(ok(['volume', 'prune', '-a']), 'Deleted Volumes:\nkeep\n', 'prune -a: named ones too');
});

t.test('--mount: tmpfs with size and mode, a read-only bind', async (t) => {
  const host = join(work, 'bind');
  mkdirSync(host);
  writeFileSync(join(host, 'f'), 'host file\n');
  const out = ok([
    'run', '--rm', '--network', 'none', '--mount', 'type=tmpfs,dst=/scratch,tmpfs-size=1m,tmpfs-mode=1770',
    '--mount', `type=bind,src=${host},dst=/h,readonly`, 'busybox', 'sh', '-c',
    'grep " /scratch " /proc/mounts; stat -c %a /scratch; cat /h/f; touch /h/g 2>/dev/null || echo read-only',
  ]);
  const [mountLine, mode, file, ro] = out.trim().split('\n');
  t.match(mountLine, /^tmpfs \/scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k(,mode=1770)? /);
  t.equal(mode, '1770');
  t.equal(file, 'host file');
  t.equal(ro, 'read-only');
});

t.test('bad volume inputs: one clear error each, nothing left behind', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['-v', 'x:/a'], /invalid volume name "x"/],
    [['-v', 'ok1:/a:rw,bogus'], /option "bogus" is not one of ro, rw and nocopy/],
    [['--mount', 'type=volume,dst=/a,colour=red'], /unknown key "colour"/],
    [['--mount', 'type=bind,src=/nonexistent-poc-path,dst=/a'], /the host path \/nonexistent-poc-path does not exist/],
    [['-v', 'ok1:/a', '--mount', 'type=tmpfs,dst=/a'], /duplicate mount point: \/a/],
    [['-v', 'ok1:/a', '--restart', 'always', '--rm'], /conflicting options: --restart and --rm/],
    [['-v', 'ok1:/a', '--restart', 'sometimes'], /invalid --restart "sometimes"/],
    [['-v', 'ok1:/a', '--health-interval', '5'], /invalid --health-interval "5"/],
    [['-v', 'ok1:/a', '--no-healthcheck', '--health-cmd', 'true'], /--no-healthcheck conflicts/],
    [['-v', 'ok1:/a', '-u', 'nosuchuser'], /unable to find user nosuchuser: no matching entries in passwd file/],
  ];
  for (const [flags, message] of cases) {
    const r = poc(['run', '--network', 'none', ...flags, 'busybox', 'true']);
    t.not(r.status, 0, flags.join(' '));
    t.match(r.stderr, message, flags.join(' '));
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  for (const [args, message] of [
    [['volume', 'create', 'b@d'], /invalid volume name "b@d"/],
    [['volume', 'rm', 'nosuch'], /no such volume: nosuch/],
    [['volume', 'inspect', 'nosuch'], /no such volume: nosuch/],
    [['volume', 'frobnicate'], /unknown subcommand "frobnicate"/],
    [['wait', '--condition', 'sunny', 'x'], /invalid --condition "sunny"/],
  ] as Array<[string[], RegExp]>) {
    const r = poc(args);
    t.not(r.status, 0, args.join(' '));
    t.match(r.stderr, message, args.join(' '));
  }
  t.same(readdirSync(join(root, 'containers')), [], 'no container');
  t.same(volumes(), [], 'no volume: ok1 was not made by a create that failed');
});

/** The host's uptime in seconds at each start, which the container appends to a bound file. */
function startTimes(file: string): number[] {
  return readFileSync(file, 'utf8').trim().split('\n').map((l) => Number(l.split(' ')[0]));
}

t.test('--restart on-failure:N: a crashing service restarts with growing delays, then stays down', async (t) => {
  const dir = join(work, 'crash');
  mkdirSync(dir);
  ok(['run', '-d', '--name', 'crash', '--network', 'none', '--restart', 'on-failure:4', '-v', `${dir}:/d`, 'busybox', 'sh', '-c', 'cat /proc/uptime >> /d/starts; exit 3']);
  t.equal(ok(['wait', 'crash']), '3\n', 'wait returns once no restart is coming');
  const starts = startTimes(join(dir, 'starts'));
  t.equal(starts.length, 5, 'the first run and 4 restarts');
  const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
  // Each gap holds at least docker's back-off before that restart: 100 ms, doubled each time (/proc/uptime has
  // 10 ms steps). How much more (the cleanup and the next create) depends on the machine's load: not asserted.
  gaps.forEach((g, i) => t.ok(g >= 0.1 * 2 ** i - 0.01, `gap ${i + 1} (${g.toFixed(2)} s) >= ${0.1 * 2 ** i} s`));
  t.ok(gaps[3]! > gaps[0]!, `the delays grow: ${gaps.map((g) => g.toFixed(2)).join(', ')} s`);
  const c = inspect('crash');
  t.match(c.State, { Status: 'exited', ExitCode: 3, Restarting: false });
  t.equal(c.RestartCount, 4);
  t.same(c.HostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 4 });
  t.match(ok(['ps', '-a']), /Exited \(3\)/);
  t.equal(JSON.parse(ok(['ps', '-a', '--format', 'json']))[0].restartCount, 4);
  ok(['rm', 'crash']);
});

t.test('--restart always: restarts after a clean exit; poc stop and poc kill are not undone', async (t) => {
  ok(['run', '-d', '--name', 'svc', '--network', 'none', '--restart', 'always', 'busybox', 'sh', '-c', 'sleep 0.3']);
  await until('a restart', () => inspect('svc').RestartCount >= 1);
  ok(['stop', '-t', '1', 'svc']);
  const after = inspect('svc');
  t.equal(after.State.Status, 'exited', 'stopped');
  await sleep(1500); // longer than any back-off so far: a restart would have come
  t.equal(inspect('svc').State.Status, 'exited', 'still stopped');
  t.equal(inspect('svc').RestartCount, after.RestartCount, 'no restart after stop');

  ok(['start', 'svc']);
  t.equal(inspect('svc').State.Status, 'running', 'poc start clears the stop');
  await until('a restart after start', () => inspect('svc').RestartCount > after.RestartCount);
  ok(['rm', '-f', 'svc']);

  ok(['run', '-d', '--name', 'k', '--network', 'none', '--restart', 'unless-stopped', 'busybox', 'sleep', '60']);
  ok(['kill', 'k']);
  t.equal(ok(['wait', 'k']), '137\n');
  await sleep(500);
  t.match(inspect('k'), { RestartCount: 0, State: { Status: 'exited' } }, 'kill is not undone');
  ok(['rm', 'k']);
});

t.test('health: the image HEALTHCHECK, status moving with the result, wait --condition, --health-* over it', async (t) => {
  ok(['run', '-d', '--name', 'hc', '--network', 'none', 'volimg:1', 'sleep', '60']);
  t.equal(inspect('hc').State.Health.Status, 'starting');
  t.match(ok(['ps']), /Up .* \(health: starting\)/);
  t.equal(ok(['wait', '--condition', 'unhealthy', 'hc']), '-1\n', 'failing: unhealthy after the retries');
  let h = inspect('hc').State.Health;
  t.ok(h.FailingStreak >= 2, `failing streak ${h.FailingStreak}`);
  t.match(h.Log.at(-1), { ExitCode: 1, Output: '', Start: /^\d{4}-/, End: /^\d{4}-/ });
  t.match(ok(['ps']), /\(unhealthy\)/);

  ok(['exec', 'hc', 'touch', '/tmp/healthy']);
  t.equal(ok(['wait', '--condition', 'healthy', 'hc']), '-1\n');
  h = inspect('hc').State.Health;
  t.match(h, { Status: 'healthy', FailingStreak: 0 });
  t.match(h.Log.at(-1), { ExitCode: 0, Output: 'fine\n' });
  t.ok(h.Log.length <= 5, 'at most 5 results kept');
  t.match(ok(['ps']), /Up .* \(healthy\)/);
  t.same(inspect('hc').Config.Healthcheck, { Test: ['CMD-SHELL', 'test -e /tmp/healthy && echo fine'], Interval: HEALTH_INTERVAL_NS, Retries: 2 });

  ok(['exec', 'hc', 'rm', '/tmp/healthy']);
  ok(['wait', '--condition', 'unhealthy', 'hc']);
  ok(['stop', '-t', '1', 'hc']);
  t.equal(inspect('hc').State.Health.Status, 'unhealthy', 'a stopped container is unhealthy, as docker leaves it');
  ok(['rm', '-v', 'hc']);

  // Flags over the image's check: a command that outlives its timeout, killed and recorded as -1.
  ok(['run', '-d', '--name', 'slow', '--network', 'none', '--health-cmd', 'sleep 30', '--health-timeout', '100ms', '--health-interval', '2s', '--health-retries', '1', 'volimg:1', 'sleep', '60']);
  ok(['wait', '--condition', 'unhealthy', 'slow']);
  // The check's process (its host pid, from pocrun exec --pid-file), read before the next check 2 s later.
  const slowId = inspect('slow').Id;
  const checkPid = Number(readFileSync(join(root, 'containers', slowId, 'health.json.pid'), 'utf8'));
  t.match(inspect('slow').State.Health.Log[0], { ExitCode: -1, Output: 'Health check exceeded timeout (100ms)' });
  const gone = () => !existsSync(`/proc/${checkPid}`) || /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${checkPid}/stat`, 'utf8'));
  await until('the timed-out check to be killed', gone, 5000);
  t.pass(`the timed-out check (pid ${checkPid}) was killed`);
  ok(['rm', '-f', '-v', 'slow']);

  ok(['run', '-d', '--name', 'none', '--network', 'none', '--no-healthcheck', 'volimg:1', 'sleep', '60']);
  t.equal(inspect('none').State.Health, undefined, '--no-healthcheck');
  const r = poc(['wait', '--condition', 'healthy', 'none']);
  t.not(r.status, 0);
  t.match(r.stderr, /has no health check/);
  ok(['rm', '-f', '-v', 'none']);
});

t.test('nothing is left: containers, volumes, mounts, monitors', async (t) => {
  t.same(readdirSync(join(root, 'containers')), []);
  t.same(volumes(), []);
  t.same(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(root)), []);
  t.same(spawnSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes('poc-monitor') && l.includes(root)), []);
});
