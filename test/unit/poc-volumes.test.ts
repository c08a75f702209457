/**
 * Pure parts of volumes, restart policies and health checks: -v and --mount as docker reads them, the image's
 * VOLUMEs, the OCI mounts, --restart, the --health-* flags merged over the image's HEALTHCHECK, and the monitor's
 * flags for both.
 */
import t from 'tap';
import { RUN_FLAGS, runFlags } from '../../src/cli/poc.js';
import { parseFlags, splitAtFirstArg } from '../../src/cli/args.js';
import { planBundle, type BundleContext } from '../../src/poc/containers/bundle.js';
import { resolveRunFlags } from '../../src/poc/containers/options.js';
import { parseRestart, restartMonitorArgs } from '../../src/poc/containers/restart.js';
import { effectiveHealthcheck, healthMonitorArgs, parseDuration, parseHealthFlags } from '../../src/poc/containers/health.js';
import { defaultImageConfig } from '../../src/poc/images/image-store.js';
import { checkDuplicateTargets, describeMount, imageVolumes, parseMountFlag, parseVolumeFlag, tmpfsOptions } from '../../src/poc/volumes/spec.js';

const ctx = { readFile: () => '', hostEnv: {}, cpuCount: 2, systemdRunning: false };
function resolve(argv: string[]) {
  const [flagArgs, positional] = splitAtFirstArg(argv, RUN_FLAGS);
  const p = parseFlags(flagArgs, RUN_FLAGS, 'run');
  p.args = [...p.args, ...positional];
  return resolveRunFlags(runFlags(p), ctx);
}

t.test('-v: binds, named and anonymous volumes', async (t) => {
  const cases: Array<[string, object]> = [
    ['/srv/www/:/www:ro', { type: 'bind', source: '/srv/www', destination: '/www', readOnly: true }],
    ['/a:/b:rshared,rw', { type: 'bind', source: '/a', destination: '/b', readOnly: false, propagation: 'rshared' }],
    ['data:/var/lib/db', { type: 'volume', source: 'data', destination: '/var/lib/db', readOnly: false }],
    ['my.vol_1:/x:ro,nocopy', { type: 'volume', source: 'my.vol_1', destination: '/x', readOnly: true, noCopy: true }],
    ['/cache', { type: 'volume', source: '', destination: '/cache', readOnly: false, anonymous: true }],
  ];
  for (const [spec, want] of cases) t.same(parseVolumeFlag(spec), want, spec);
  const bad: Array<[string, RegExp]> = [
    ['x:/a', /invalid volume name "x"/],
    ['rel/path:/a', /the host path "rel\/path" is not absolute \(and a volume name has no "\/"\)/],
    ['-bad:/a', /invalid volume name "-bad"/],
    ['data:rel', /container path "rel" is not absolute/],
    ['data:/', /cannot be "\/"/],
    ['data:/a:nosuch', /option "nosuch" is not one of ro, rw and nocopy/],
    ['/a:/b:nocopy', /option "nocopy" is not one of ro, rw and a propagation/],
    ['data:/a:rshared', /option "rshared" is not one of ro, rw and nocopy/],
    ['/a:/b:/c:ro', /use HOST_PATH/],
    ['/a::ro', /use HOST_PATH/],
  ];
  for (const [spec, message] of bad) t.throws(() => parseVolumeFlag(spec), { name: 'PocError', message }, spec);
});

t.test('--mount with docker keys', async (t) => {
  const cases: Array<[string, object]> = [
    ['type=bind,source=/srv,target=/www,readonly', { type: 'bind', source: '/srv', destination: '/www', readOnly: true }],
    ['type=bind,src=/srv,dst=/www,bind-propagation=rslave,ro=false', { type: 'bind', source: '/srv', destination: '/www', readOnly: false, propagation: 'rslave' }],
    ['source=data,destination=/d', { type: 'volume', source: 'data', destination: '/d', readOnly: false }],
    ['type=volume,src=data,dst=/d,volume-nocopy,ro=1', { type: 'volume', source: 'data', destination: '/d', readOnly: true, noCopy: true }],
    ['type=volume,target=/anon', { type: 'volume', source: '', destination: '/anon', readOnly: false, anonymous: true }],
    ['type=tmpfs,target=/run/t,tmpfs-size=64m,tmpfs-mode=1770', { type: 'tmpfs', source: '', destination: '/run/t', readOnly: false, tmpfsSize: 64 * 1024 ** 2, tmpfsMode: 0o1770 }],
  ];
  for (const [spec, want] of cases) t.same(parseMountFlag(spec), want, spec);
  const bad: Array<[string, RegExp]> = [
    ['type=nfs,target=/a', /type "nfs" is not bind, volume or tmpfs/],
    ['type=bind,source=/a', /target is missing/],
    ['type=bind,target=/a', /a bind needs source/],
    ['type=bind,source=rel,target=/a', /bind source "rel" is not absolute/],
    ['type=tmpfs,source=x,target=/a', /source does not apply to type=tmpfs/],
    ['type=volume,target=/a,tmpfs-size=1m', /tmpfs-size does not apply to type=volume/],
    ['type=bind,source=/a,target=/a,colour=red', /unknown key "colour"/],
    ['type=tmpfs,target=/a,tmpfs-size=lots', /tmpfs-size "lots"/],
    ['type=tmpfs,target=/a,tmpfs-mode=999', /tmpfs-mode "999"/],
    ['type=bind,source=/a,target=/a,bind-propagation=sideways', /bind-propagation "sideways"/],
    ['type=volume,target=/a,readonly=maybe', /readonly=maybe: use true or false/],
    ['type=volume,target=/a,target=/b', /target given more than once/],
  ];
  for (const [spec, message] of bad) t.throws(() => parseMountFlag(spec), { name: 'PocError', message }, spec);
  t.throws(() => checkDuplicateTargets([parseVolumeFlag('a1:/d'), parseMountFlag('type=tmpfs,target=/d')]), { message: /duplicate mount point: \/d/ });
  t.throws(() => resolve(['-v', 'a1:/d', '--mount', 'type=tmpfs,dst=/d/', 'img']), { message: /duplicate mount point/ }, 'through poc run');
});

t.test("an image's VOLUMEs become anonymous volumes, unless mounted over", async (t) => {
  const given = [parseVolumeFlag('db:/var/lib/db')];
  t.same(
    imageVolumes({ '/var/lib/db': {}, '/logs/': {}, '/cache': {}, relative: {} }, given).map((v) => [v.destination, v.anonymous, v.source]),
    [['/cache', true, ''], ['/logs', true, '']],
  );
  t.same(imageVolumes(undefined, given), []);
});

const CTX: BundleContext = {
  containerId: 'c'.repeat(64), name: 'web', hostname: 'h', rootfs: '/r', etcDir: '/e', user: { uid: 0, gid: 0 },
  hook: { path: '/poc', env: [] }, arch: 'amd64', kernel: '6.1.0', volumePath: (n) => `/var/lib/poc/volumes/${n}/_data`,
};

t.test('mounts in config.json', async (t) => {
  const o = resolve(['-v', '/srv:/www:ro', '-v', 'data:/data', '--mount', 'type=tmpfs,dst=/scratch,tmpfs-size=1m,tmpfs-mode=700', '--mount', 'type=bind,src=/m,dst=/m,bind-propagation=rshared', 'img']);
  const spec = planBundle(defaultImageConfig(), o, CTX);
  const mine = spec.mounts!.filter((m) => ['/www', '/data', '/scratch', '/m'].includes(m.destination));
  t.same(mine, [
    { destination: '/www', type: 'bind', source: '/srv', options: ['rbind', 'rprivate', 'ro'] },
    { destination: '/data', type: 'bind', source: '/var/lib/poc/volumes/data/_data', options: ['rbind', 'rprivate', 'rw'] },
    { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'rprivate', 'rw', 'mode=700', 'size=1024k'] },
    { destination: '/m', type: 'bind', source: '/m', options: ['rbind', 'rshared', 'rw'] },
  ]);
  t.same(tmpfsOptions({ type: 'tmpfs', source: '', destination: '/t', readOnly: true }), ['noexec', 'nosuid', 'nodev', 'rprivate', 'ro']);
  t.same(describeMount(o.volumes[1]!, CTX.volumePath), { Type: 'volume', Destination: '/data', Mode: 'z', RW: true, Name: 'data', Source: '/var/lib/poc/volumes/data/_data', Driver: 'local', Propagation: '' });
});

t.test('--restart', async (t) => {
  t.same(parseRestart('no'), { Name: 'no', MaximumRetryCount: 0 });
  t.same(parseRestart('always'), { Name: 'always', MaximumRetryCount: 0 });
  t.same(parseRestart('unless-stopped'), { Name: 'unless-stopped', MaximumRetryCount: 0 });
  t.same(parseRestart('on-failure:5'), { Name: 'on-failure', MaximumRetryCount: 5 });
  for (const [text, message] of [['sometimes', /use no, on-failure\[:N\], always/], ['always:3', /only with on-failure/], ['on-failure:-1', /whole number/], ['on-failure:x', /whole number/]] as const) {
    t.throws(() => parseRestart(text), { name: 'PocError', message }, text);
  }
  t.same(restartMonitorArgs(parseRestart('no')), []);
  t.same(restartMonitorArgs(parseRestart('on-failure:3')), ['--restart', 'on-failure', '--restart-max', '3']);
  t.same(resolve(['--restart', 'always', 'img']).restart, { Name: 'always', MaximumRetryCount: 0 });
  t.throws(() => resolve(['--restart', 'always', '--rm', 'img']), { message: /conflicting options: --restart and --rm/ });
  t.equal(resolve(['--restart', 'no', '--rm', 'img']).autoRemove, true, '--restart no goes with --rm');
});

t.test('health checks: flags, durations, the image merged in', async (t) => {
  t.equal(parseDuration('30s', 'f'), 30e9);
  t.equal(parseDuration('1m30s', 'f'), 90e9);
  t.equal(parseDuration('1.5s', 'f'), 1.5e9);
  t.equal(parseDuration('250ms', 'f'), 250e6);
  for (const bad of ['', '10', 's', '1x', '1s junk']) t.throws(() => parseDuration(bad, '--health-interval'), { message: /invalid --health-interval/ }, bad);
  t.same(parseHealthFlags({}), undefined);
  t.same(parseHealthFlags({ noHealthcheck: true }), { Test: ['NONE'] });
  t.throws(() => parseHealthFlags({ noHealthcheck: true, healthCmd: 'true' }), { message: /--no-healthcheck conflicts with --health-\* options/ });
  t.throws(() => parseHealthFlags({ healthInterval: '10us' }), { message: /at least 1ms/ });
  t.throws(() => parseHealthFlags({ healthRetries: '-1' }), { message: /--health-retries/ });
  t.same(resolve(['--health-cmd', 'test -e /ok', '--health-interval', '1s', '--health-retries', '2', 'img']).healthcheck, { Test: ['CMD-SHELL', 'test -e /ok'], Interval: 1e9, Retries: 2 });

  const image = { Test: ['CMD', 'curl', '-f', 'http://localhost/'], Interval: 5e9, Timeout: 2e9, Retries: 4 };
  t.same(effectiveHealthcheck(image, undefined), image, "the image's");
  t.same(effectiveHealthcheck(image, { Test: [], Interval: 1e9 }), { ...image, Interval: 1e9 }, 'a flag over the image');
  t.same(effectiveHealthcheck(image, { Test: ['CMD-SHELL', 'true'] }), { ...image, Test: ['CMD-SHELL', 'true'] }, 'the command replaced');
  t.equal(effectiveHealthcheck(image, { Test: ['NONE'] }), undefined, '--no-healthcheck');
  t.equal(effectiveHealthcheck(undefined, { Test: [], Interval: 1e9 }), undefined, 'no command anywhere: no check');
  t.throws(() => effectiveHealthcheck({ Test: ['RUN', 'x'] }, undefined), { message: /neither CMD nor CMD-SHELL/ });

  t.same(healthMonitorArgs(effectiveHealthcheck(undefined, { Test: ['CMD-SHELL', 'test -e /ok'], Interval: 1.5e9 }), '/c/health.json'), [
    '--health-file', '/c/health.json', '--health-interval', '1500', '--health-timeout', '30000', '--health-start-period', '0', '--health-retries', '3',
    '--health-arg', '/bin/sh', '--health-arg', '-c', '--health-arg', 'test -e /ok',
  ]);
  t.same(healthMonitorArgs(undefined, '/x'), []);
});
