/**
 * On cgroup v2 the container's init is cloned straight into its cgroup (clone3 CLONE_INTO_CGROUP), and a kernel
 * that refuses the flag gets the old move. This host is hybrid; the tests run pocrun in a private mount namespace
 * with the cgroup2 hierarchy mounted over /sys/fs/cgroup (it has no controllers here, which these tests need
 * not). The helper runs under strace: its trace shows which way the init was placed, and strace's fault
 * injection plays the kernel without the flag.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { POCRUN, makeBundle, setup, top } from '../helpers/runtime.js';

const { work, rt, residue } = setup();
const UNIFIED = '/sys/fs/cgroup/unified'; // the same hierarchy, as this host mounts it

/** `pocrun run` of a container printing its /proc/self/cgroup, on cgroup v2, with the helper under strace. */
function runOnV2(t: Test, id: string, inject: string[] = []) {
  const b = makeBundle(work, (s) => {
    s.process!.args = ['cat', '/proc/self/cgroup'];
  });
  const trace = join(work, `${id}.strace`);
  const wrapper = join(work, `${id}-init.sh`);
  writeFileSync(wrapper, `#!/bin/sh\nexec strace -f -qq -o ${trace} -e trace=clone3,openat ${inject.join(' ')} ${join(top, 'dist/pocrun-init')} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const script = 'mount -t cgroup2 none /sys/fs/cgroup && exec "$@"';
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', POCRUN, '--root', rt.root, 'run', '--bundle', b.dir, id], {
    encoding: 'utf8',
    env: { ...process.env, POCRUN_INIT: wrapper },
    timeout: 60_000,
  });
  t.equal(r.status, 0, r.stderr);
  const cgroup = b.spec.linux!.cgroupsPath!;
  t.notOk(existsSync(`${UNIFIED}${cgroup}`), 'the cgroup is gone after run');
  return { out: r.stdout, strace: readFileSync(trace, 'utf8'), cgroup };
}

t.test('the init is cloned into its cgroup: no cgroup.procs write, and its cgroup namespace is rooted there', async (t) => {
  const { out, strace } = runOnV2(t, 'v2clone');
  t.match(out, /^0::\/$/m, 'the container sees its cgroup as /');
  t.match(strace, /clone3\(\{flags=[^}]*CLONE_NEWCGROUP[^}]*CLONE_INTO_CGROUP[^}]*cgroup=\d+\}, \d+\) = \d+/, 'clone3 with CLONE_INTO_CGROUP');
  t.notMatch(strace, /cgroup\.procs/, 'no process moved through cgroup.procs');
});

t.test('a kernel without CLONE_INTO_CGROUP (E2BIG) gets the move instead, with the same result', async (t) => {
  const { out, strace } = runOnV2(t, 'v2fallback', ['-e', 'inject=clone3:error=E2BIG:when=1']);
  t.match(out, /^0::\/$/m, 'the container sees its cgroup as /');
  t.match(strace, /CLONE_INTO_CGROUP.* = -1 E2BIG .*\(INJECTED\)/, 'the flag was refused');
  t.match(strace, /openat\([^)]*cgroup\.procs", O_WRONLY/, 'the helper moved itself');
  const clones = strace.split('\n').filter((l) => /clone3\(\{flags=[^}]*CLONE_NEWPID/.test(l));
  t.equal(clones.length, 2, 'then cloned again');
  t.notMatch(clones[1]!, /CLONE_INTO_CGROUP/, 'without the flag');
});

t.test('nothing left behind', async (t) => residue(t));
