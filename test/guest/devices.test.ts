/**
 * Device rules on a pure cgroup v2 host (the guest: Debian 12, kernel 6.1, systemd as PID 1): pocrun attaches
 * an eBPF device filter to the container's cgroup, built from linux.resources.devices, and `update` replaces it.
 * test/helpers/device_programs.py lists the programs attached (the guest has no bpftool). Runs only in the
 * guest: scripts/guest/test.sh.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { makeBundle, setup, top } from '../helpers/runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';

const CGROUP2_SUPER_MAGIC = 0x63677270;
const { work, rt, residue } = setup();
let n = 0;
const id = () => `dev-${n++}`;

t.test('the guest is a pure cgroup v2 host', async (t) => {
  t.equal(process.env.POC_GUEST, '1', 'POC_GUEST=1: this file runs in the guest (scripts/guest/test.sh), never on the host');
  t.equal(statfsSync('/sys/fs/cgroup').type, CGROUP2_SUPER_MAGIC, '/sys/fs/cgroup is cgroup2');
});

/** The device programs attached to a container's cgroup. */
function programs(spec: Spec): { id: number; name: string; multi: boolean }[] {
  const r = spawnSync('python3', [join(top, 'test/helpers/device_programs.py'), `/sys/fs/cgroup${spec.linux!.cgroupsPath}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`device_programs.py: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const withMknod = (s: Spec) => {
  for (const set of ['bounding', 'effective', 'permitted'] as const) s.process!.capabilities![set]!.push('CAP_MKNOD');
};
/** Tries to open a node for reading: "opened", or "denied" with the shell's message before it. */
const tryOpen = (path: string) => `(exec 3<${path}) 2>&1 && echo opened || echo denied`;

t.test('`pocrun spec` as it is runs: the default devices open, /dev/kmsg does not', async (t) => {
  const dir = join(work, 'spec');
  const b = makeBundle(work, () => {}, 'spec');
  rmSync(join(dir, 'config.json'));
  rt.ok(['spec', '--bundle', dir]);
  const spec = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Spec;
  // Only what a terminal-less test needs changes, and the host's /dev/kmsg (c 1:11) is bound in to be refused;
  // the device rules are the default spec's.
  spec.process!.terminal = false;
  spec.mounts!.push({ destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['bind'] });
  spec.process!.args = ['sh', '-c', `echo x > /dev/null && head -c 3 /dev/zero | wc -c && ${tryOpen('/dev/kmsg')}`];
  spec.linux!.cgroupsPath = b.spec.linux!.cgroupsPath;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
  t.same(spec.linux!.resources!.devices, [{ allow: false, access: 'rwm' }], 'the default spec denies every device');
  const r = rt.run(['run', '--bundle', dir, id()]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^3\nsh: can't open .*kmsg.*: Operation not permitted\ndenied\n$/);
});

t.test('a denied device: mknod is allowed (as runc and crun allow it), opening it is EPERM; update allows it', async (t) => {
  const name = id();
  const b = makeBundle(work, (s) => {
    withMknod(s);
    s.process!.args = ['sh', '-c', 'mknod /tmp/fuse c 10 229 && touch /tmp/ready; sleep 600'];
  });
  rt.ok(['run', '-d', '--bundle', b.dir, name]);
  t.teardown(() => void rt.run(['delete', '--force', name]));
  const exec = (script: string) => rt.run(['exec', name, 'sh', '-c', script]).stdout;
  // The init runs on after `run -d` returns: wait (bounded) for it to have made the node.
  t.equal(exec('for i in $(seq 300); do [ -e /tmp/ready ] && break; sleep 0.1; done; ls /tmp/fuse'), '/tmp/fuse\n', 'mknod c 10:229 succeeded');
  t.match(exec(tryOpen('/tmp/fuse')), /Operation not permitted\ndenied\n$/, 'open is EPERM');
  const before = programs(b.spec);
  t.same(before.map((p) => [p.name, p.multi]), [['pocrun_devices', true]], 'one program, attached with BPF_F_ALLOW_MULTI');

  const resources = join(work, `${name}.json`);
  writeFileSync(resources, JSON.stringify({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' }] }));
  rt.ok(['update', '--resources', resources, name]);
  t.equal(exec(tryOpen('/tmp/fuse')), 'opened\n', 'update allowed it');
  const after = programs(b.spec);
  t.equal(after.length, 1, 'one program still');
  t.not(after[0]!.id, before[0]!.id, 'the new one: the old one is detached');
  t.equal(exec('echo x > /dev/null && echo ok'), 'ok\n', 'the default devices stay allowed');

  writeFileSync(resources, JSON.stringify({ devices: [{ allow: false, access: 'rwm' }] }));
  rt.ok(['update', '--resources', resources, name]);
  t.match(exec(tryOpen('/tmp/fuse')), /denied\n$/, 'and an update denies it again');
  t.equal(programs(b.spec).length, 1);
});

t.test('podman\'s and containerd\'s device lists (a deny-all, then the default devices) run', async (t) => {
  const list = (...devs: [number, number | undefined][]) =>
    devs.map(([major, minor]) => ({ allow: true, type: 'c', major, ...(minor === undefined ? {} : { minor }), access: 'rwm' }));
  const configs: [string, NonNullable<NonNullable<Spec['linux']>['resources']>['devices']][] = [
    ['podman', [{ allow: false, access: 'rwm' }, ...list([1, 3], [1, 8], [1, 7], [5, 0], [1, 5], [1, 9], [5, 1], [136, undefined], [5, 2], [10, 200])]],
    ['containerd', [{ allow: false, access: 'rwm' }, ...list([1, 3], [1, 5], [1, 7], [1, 8], [1, 9], [5, 0], [5, 1], [5, 2], [136, undefined])]],
  ];
  for (const [engine, devices] of configs) {
    const b = makeBundle(work, (s) => {
      s.linux!.resources = { devices };
      s.mounts!.push({ destination: '/dev/kmsg', type: 'bind', source: '/dev/kmsg', options: ['bind'] });
      s.process!.args = ['sh', '-c', `head -c 2 /dev/urandom | wc -c; ${tryOpen('/dev/kmsg')}`];
    });
    const r = rt.run(['run', '--bundle', b.dir, id()]);
    t.equal(r.status, 0, `${engine}: ${r.stderr}`);
    t.match(r.stdout, /^2\n.*Operation not permitted\ndenied\n$/, engine);
  }
});

t.test('nothing left behind', async (t) => residue(t));
