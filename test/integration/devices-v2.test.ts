/**
 * cgroup v2's device filter against this kernel. The host is hybrid (v1 controllers, cgroup2 with none at
 * /sys/fs/cgroup/unified), so each pocrun runs in a private mount namespace where cgroup2 is mounted over
 * /sys/fs/cgroup: pocrun picks its v2 driver there, and the eBPF program attaches to any cgroup2 cgroup, with
 * or without controllers. The cgroups are the test's own (/pocrun-test/<pid>/...), seen from here through the
 * host's cgroup2 mount. test/helpers/device_programs.py lists the programs attached, as bpftool would.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { POCRUN, Runtime, makeBundle, setup, top } from '../helpers/runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';

const { work, rt: hostRt, residue } = setup();

/** The host's cgroup2 mount (/sys/fs/cgroup/unified here, /sys/fs/cgroup on a pure v2 host). */
const cgroup2 = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
  .map((l) => l.split(' '))
  .find((f) => f[f.indexOf('-', 6) + 1] === 'cgroup2')?.[4];
if (!cgroup2) throw new Error('this host has no cgroup2 mount: the device filter cannot be tested');

const wrapper = join(work, 'pocrun-v2');
writeFileSync(wrapper, `#!/bin/sh\nexec unshare -m --propagation private sh -c 'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$0" "$@"' ${POCRUN} "$@"\n`);
chmodSync(wrapper, 0o755);
const rt = new Runtime(work, wrapper);

/** The device programs attached to a container's cgroup. */
function programs(spec: Spec): { id: number; name: string; multi: boolean }[] {
  const r = spawnSync('python3', [join(top, 'test/helpers/device_programs.py'), `${cgroup2}${spec.linux!.cgroupsPath}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`device_programs.py: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const withMknod = (s: Spec) => {
  for (const set of ['bounding', 'effective', 'permitted'] as const) s.process!.capabilities![set]!.push('CAP_MKNOD');
};
/** Makes /tmp/fuse (c 10:229, denied by the default rules) and tries to open it for reading. */
const FUSE = 'mknod /tmp/fuse c 10 229 2>&1 && echo mknod-ok; (exec 3</tmp/fuse) 2>&1 && echo opened || echo denied';

let n = 0;
const id = () => `dev${process.pid}-${n++}`;

t.test('the default spec runs on cgroup v2: one device filter, the default devices open, others refused', async (t) => {
  const b = makeBundle(work, (s) => {
    withMknod(s);
    s.process!.args = ['sh', '-c', `echo x > /dev/null && head -c 4 /dev/urandom | wc -c && ${FUSE}`];
  });
  const r = rt.run(['run', '--bundle', b.dir, id()]);
  t.equal(r.status, 0, r.stderr);
  // mknod of any node is allowed, as runc and crun allow it (c *:* m, b *:* m): the open is what is guarded.
  t.match(r.stdout, /^4\nmknod-ok\nsh: can't open .*fuse.*: Operation not permitted\ndenied\n$/);
});

t.test('update --resources replaces the filter: the device opens, and the old program is gone', async (t) => {
  const name = id();
  const b = makeBundle(work, (s) => {
    withMknod(s);
    s.process!.args = ['sh', '-c', 'mknod /tmp/fuse c 10 229 && touch /tmp/ready; sleep 60'];
  });
  rt.ok(['run', '-d', '--bundle', b.dir, name]);
  t.teardown(() => void rt.run(['delete', '--force', name]));
  // The init runs on after `run -d` returns: wait (bounded) for it to have made the node.
  t.equal(rt.run(['exec', name, 'sh', '-c', 'for i in $(seq 300); do [ -e /tmp/ready ] && break; sleep 0.1; done; ls /tmp/fuse']).stdout, '/tmp/fuse\n');
  const open = () => rt.run(['exec', name, 'sh', '-c', '(exec 3</tmp/fuse) 2>/dev/null && echo opened || echo denied']).stdout;
  const before = programs(b.spec);
  t.same(before.map((p) => [p.name, p.multi]), [['pocrun_devices', true]], 'one program, attached with BPF_F_ALLOW_MULTI');
  t.equal(open(), 'denied\n');

  const resources = join(work, `${name}.json`);
  writeFileSync(resources, JSON.stringify({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'r' }] }));
  rt.ok(['update', '--resources', resources, name]);
  const after = programs(b.spec);
  t.equal(after.length, 1, 'still one program');
  t.not(after[0]!.id, before[0]!.id, 'a new one: the old is detached');
  t.equal(open(), 'opened\n');
  t.equal(rt.run(['exec', name, 'sh', '-c', '(exec 3>/tmp/fuse) 2>/dev/null && echo opened || echo denied']).stdout, 'denied\n', 'write was not allowed');
  t.equal(rt.run(['exec', name, 'sh', '-c', 'echo x > /dev/null && echo null-ok']).stdout, 'null-ok\n', 'the default devices stay allowed');

  writeFileSync(resources, JSON.stringify({ devices: [{ allow: false, access: 'rwm' }] }));
  rt.ok(['update', '--resources', resources, name]);
  t.equal(open(), 'denied\n', 'and denied again');
  t.equal(programs(b.spec).length, 1);
  t.equal(rt.ok(['update', '--pids-limit', '0', name]), '', 'an update without devices');
  t.equal(programs(b.spec).length, 1, 'leaves the filter alone');
});

t.test('on this host\'s cgroup v1 too, update replaces the rules and keeps the default devices', async (t) => {
  const name = id();
  const b = makeBundle(work, (s) => {
    withMknod(s);
    s.process!.args = ['sh', '-c', 'mknod /tmp/fuse c 10 229 && touch /tmp/ready; sleep 60'];
  });
  hostRt.ok(['run', '-d', '--bundle', b.dir, name]);
  t.teardown(() => void hostRt.run(['delete', '--force', name]));
  t.equal(hostRt.run(['exec', name, 'sh', '-c', 'for i in $(seq 300); do [ -e /tmp/ready ] && break; sleep 0.1; done; ls /tmp/fuse']).stdout, '/tmp/fuse\n');
  const resources = join(work, `${name}.json`);
  writeFileSync(resources, JSON.stringify({ devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 229, access: 'r' }] }));
  hostRt.ok(['update', '--resources', resources, name]);
  const script = '(exec 3</tmp/fuse) 2>/dev/null && echo opened || echo denied; echo x > /dev/null && echo null-ok';
  t.equal(hostRt.run(['exec', name, 'sh', '-c', script]).stdout, 'opened\nnull-ok\n');
});

t.test('a node of linux.devices may do what the device rules say, no more (as runc and crun), at create and after update', async (t) => {
  const name = id();
  const b = makeBundle(work, (s) => {
    s.linux!.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666 }];
    s.linux!.resources!.devices!.push({ allow: true, type: 'c', major: 10, minor: 229, access: 'r' });
    s.process!.args = ['sleep', '60'];
  });
  rt.ok(['run', '-d', '--bundle', b.dir, name]);
  t.teardown(() => void rt.run(['delete', '--force', name]));
  const open = (redirect: string) => rt.run(['exec', name, 'sh', '-c', `(exec 3${redirect}/dev/fuse) 2>/dev/null && echo opened || echo denied`]).stdout;
  t.equal(open('<'), 'opened\n', 'read, as its rule allows');
  t.equal(open('>'), 'denied\n', 'not written: no rule allows it');
  const resources = join(work, `${name}.json`);
  writeFileSync(resources, JSON.stringify({ devices: [{ allow: false, access: 'rwm' }] }));
  rt.ok(['update', '--resources', resources, name]);
  t.equal(open('<'), 'denied\n', 'after an update that no longer allows it, not read either');
  t.equal(rt.run(['exec', name, 'sh', '-c', 'echo x > /dev/null && echo null-ok']).stdout, 'null-ok\n', 'the defaults stay');
});

t.test('engine configs (a deny-all, then a list) run; their devices open and others do not', async (t) => {
  const list = (...devs: [string, number, number | undefined, string][]) =>
    devs.map(([type, major, minor, access]) => ({ allow: true, type, major, ...(minor === undefined ? {} : { minor }), access }));
  // podman 4.3 (cgroupfs), containerd's CRI and moby: the default allowed devices, as their specs write them.
  const configs: [string, NonNullable<NonNullable<Spec['linux']>['resources']>['devices']][] = [
    ['podman', [{ allow: false, access: 'rwm' }, ...list(['c', 1, 3, 'rwm'], ['c', 1, 8, 'rwm'], ['c', 1, 7, 'rwm'], ['c', 5, 0, 'rwm'], ['c', 1, 5, 'rwm'], ['c', 1, 9, 'rwm'], ['c', 5, 1, 'rwm'], ['c', 136, undefined, 'rwm'], ['c', 5, 2, 'rwm'], ['c', 10, 200, 'rwm'])]],
    ['containerd', [{ allow: false, access: 'rwm' }, ...list(['c', 1, 3, 'rwm'], ['c', 1, 5, 'rwm'], ['c', 1, 7, 'rwm'], ['c', 1, 8, 'rwm'], ['c', 1, 9, 'rwm'], ['c', 5, 0, 'rwm'], ['c', 5, 1, 'rwm'], ['c', 5, 2, 'rwm'], ['c', 136, undefined, 'rwm'])]],
    ['moby', [{ allow: false, access: 'rwm' }, ...list(['c', -1, -1, 'm'], ['b', -1, -1, 'm'], ['c', 1, 3, 'rwm'], ['c', 1, 5, 'rwm'], ['c', 136, -1, 'rwm'], ['c', 10, 200, 'rwm'])]],
  ];
  for (const [engine, devices] of configs) {
    const b = makeBundle(work, (s) => {
      withMknod(s);
      s.linux!.resources = { devices };
      s.process!.args = ['sh', '-c', `cat /dev/zero | head -c 3 | wc -c; ${FUSE}`];
    });
    const r = rt.run(['run', '--bundle', b.dir, id()]);
    t.equal(r.status, 0, `${engine}: ${r.stderr}`);
    t.match(r.stdout, /^3\nmknod-ok\n.*Operation not permitted\ndenied\n$/, engine);
  }
});

t.test('a rule the program cannot hold is a clear error, and nothing is left', async (t) => {
  const b = makeBundle(work, (s) => {
    s.linux!.resources = { devices: [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwx' }] };
  });
  const r = rt.run(['run', '--bundle', b.dir, id()]);
  t.not(r.status, 0);
  t.match(r.stderr, /linux.resources.devices\/0\/access: "rwx" is not made of r, w and m/);
});

t.test('a load the kernel refuses (no CAP_SYS_ADMIN nor CAP_BPF) fails create with an error naming the field, and nothing is left', async (t) => {
  const noBpf = join(work, 'pocrun-v2-nobpf');
  writeFileSync(noBpf, `#!/bin/sh\nexec unshare -m --propagation private sh -c 'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec capsh --drop=cap_sys_admin,cap_bpf -- -c "exec $0 \\"\\$@\\"" sh "$@"' ${POCRUN} "$@"\n`);
  chmodSync(noBpf, 0o755);
  const b = makeBundle(work, (s) => { s.process!.args = ['true']; });
  const r = new Runtime(work, noBpf).run(['run', '--bundle', b.dir, id()]);
  t.equal(r.status, 1);
  t.equal(r.stderr, 'pocrun: attach device filter (config.json /linux/resources/devices): load the device filter (BPF_PROG_LOAD): Operation not permitted\n');
  t.notOk(existsSync(`${cgroup2}${b.spec.linux!.cgroupsPath}`), 'the cgroup is removed');
});

t.test('a program the kernel refuses: the verifier\'s words in one error line that names the field', async (t) => {
  const dir = `${cgroup2}/pocrun-test/${process.pid}/refused`;
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmdirSync(dir));
  const r = spawnSync(join(top, 'dist/pocrun-init'), ['--device-filter', dir, '0000000000000000'], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stdout, /^error device-filter\t\/linux\/resources\/devices\t22\tload the device filter \(BPF_PROG_LOAD\): Invalid argument \(verifier: .*last insn is not an exit or jmp/);
  t.same(programs({ linux: { cgroupsPath: `/pocrun-test/${process.pid}/refused` } } as Spec), [], 'nothing attached');
});

t.test('nothing left behind', async (t) => residue(t));
