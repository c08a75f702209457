/**
 * What engines read from the runtime besides containers: `pocrun features` and the log lines that carry an
 * error's message to the user (`--log FILE --log-format json`, as conmon and containerd-shim call pocrun).
 */
import t from 'tap';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle, setup } from '../helpers/runtime.js';
import { validate_features } from '../../src/spec/generated/validators.js';
import { CAPABILITIES } from '../../src/vocabulary/capabilities.js';
import { knownMountOptions, parseMountOptions } from '../../src/plan/mount-options.js';
import { SECCOMP_ACTIONS, SECCOMP_OPERATORS } from '../../src/plan/seccomp.js';
import { V1_CONTROLLERS } from '../../src/cgroups/index.js';

const { work, rt, residue } = setup();

t.test('features is valid against features-schema.json and tells the truth', async (t) => {
  const f = JSON.parse(rt.ok(['features']));
  t.ok(validate_features(f), JSON.stringify(validate_features.errors));
  t.equal(f.ociVersionMin, '1.0.0');
  t.same(f.hooks, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
  t.same(f.linux.capabilities, [...CAPABILITIES]);
  t.same(f.mountOptions, knownMountOptions());
  for (const option of f.mountOptions) {
    const parsed = parseMountOptions([option]);
    t.equal(parsed.data, '', `${option} is understood, not passed on as filesystem data`);
  }
  t.same(f.linux.namespaces, ['cgroup', 'ipc', 'mount', 'network', 'pid', 'time', 'user', 'uts']);
  // systemd: where systemd is the init (sd_booted), as --systemd-cgroup needs
  t.same(f.linux.cgroup, { v1: true, v2: true, systemd: existsSync('/run/systemd/system'), systemdUser: false, rdma: true });
  // This host: hybrid, driven as v1 (test/guest/ checks a v2 host).
  t.equal(f.annotations['io.github.pocrun.cgroup.version'], '1');
  t.same(f.annotations['io.github.pocrun.cgroup.controllers'].split(' ').sort(),
    readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / - cgroup /.test(l))
      .flatMap((l) => l.split(' ').at(-1)!.split(',')).filter((o) => V1_CONTROLLERS.includes(o as never)).sort());
  t.equal(f.annotations['io.github.pocrun.cgroup.cloneIntoCgroup'], 'false');
  t.same([f.linux.apparmor, f.linux.selinux, f.linux.intelRdt], [{ enabled: true }, { enabled: true }, { enabled: false }]);
  t.equal(f.linux.seccomp.enabled, true);
  t.same(f.linux.seccomp.actions, Object.keys(SECCOMP_ACTIONS).sort());
  t.same(f.linux.seccomp.operators, Object.keys(SECCOMP_OPERATORS).sort());
  t.ok(f.linux.seccomp.archs.includes('SCMP_ARCH_X86_64'));
  t.ok(f.linux.seccomp.supportedFlags.every((flag: string) => f.linux.seccomp.knownFlags.includes(flag)));
});

t.test('features: a listed namespace type and mount option are accepted by a real container', async (t) => {
  const f = JSON.parse(rt.ok(['features']));
  const b = makeBundle(work, (s) => {
    s.process!.args = ['sh', '-c', 'grep " /scratch " /proc/mounts'];
    s.mounts!.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'noexec', 'ro', 'rprivate'] });
    s.linux!.namespaces = f.linux.namespaces
      .filter((ns: string) => ns !== 'user' && ns !== 'time' && ns !== 'network')
      .map((type: string) => ({ type }));
  });
  const r = rt.run(['run', '--bundle', b.dir, 'feat1']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /tmpfs \/scratch tmpfs ro,nosuid,nodev,noexec/);
});

t.test('features: every listed seccomp architecture is accepted by a real container', async (t) => {
  const f = JSON.parse(rt.ok(['features']));
  // (libseccomp 2.5, as on Debian 12, lacks LOONGARCH64, M68K, SH and SHEB; a big-endian architecture cannot
  // join a filter on x86_64: none of them may be listed.)
  t.ok(f.linux.seccomp.archs.includes('SCMP_ARCH_X86_64'));
  const b = makeBundle(work, (s) => {
    s.process!.args = ['true'];
    s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', architectures: f.linux.seccomp.archs };
  });
  const r = rt.run(['run', '--bundle', b.dir, 'feat-archs']);
  t.equal(r.status, 0, r.stderr);
});

t.test('--log-format json writes runc-shaped error lines to --log', async (t) => {
  const log = join(work, 'log.json');
  const r = rt.run(['--log', log, '--log-format', 'json', 'create', '--bundle', join(work, 'no-such-bundle'), 'x1']);
  t.equal(r.status, 1);
  t.match(r.stderr, /no-such-bundle is not a directory/, 'the message on stderr too');
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  t.equal(lines.length, 1);
  const entry = JSON.parse(lines[0]!);
  t.same(Object.keys(entry).sort(), ['level', 'msg', 'time']);
  t.equal(entry.level, 'error');
  t.match(entry.msg, /bundle .*no-such-bundle is not a directory/);
  t.ok(!Number.isNaN(Date.parse(entry.time)) && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(entry.time), `RFC 3339 time: ${entry.time}`);

  // containerd-shim's exec: every call prefixed with --root, --log and --log-format json.
  const process = join(work, 'process.json');
  writeFileSync(process, JSON.stringify({ args: ['true'], cwd: '/' }));
  const shim = rt.run(['--log', log, '--log-format', 'json', 'exec', '--process', process, '--detach', '--pid-file', join(work, 'p.pid'), 'no-such-container']);
  t.equal(shim.status, 255, "exec's own failure, as runc's");
  const second = JSON.parse(readFileSync(log, 'utf8').trim().split('\n')[1]!);
  t.same([second.level, second.msg], ['error', 'container "no-such-container" does not exist']);
  t.notOk(existsSync(join(work, 'p.pid')));
});

t.test('--log-format text (the default) writes logrus-style lines', async (t) => {
  const log = join(work, 'log.txt');
  const r = rt.run(['--log', log, 'kill', 'no-such-container', '9']);
  t.equal(r.status, 1);
  t.match(readFileSync(log, 'utf8'), /^time="[^"]+" level=error msg="container \\"no-such-container\\" does not exist"\n$/);
  const bad = rt.run(['--log-format', 'xml', 'list']);
  t.match(bad.stderr, /invalid --log-format "xml"/);
});

t.test('nothing left behind', async (t) => residue(t));
