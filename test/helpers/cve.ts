/**
 * Regression tests for the known runc escapes, run as root by security.test.ts and as an unprivileged user by
 * rootless.test.ts: the same attacks against the same checks, whoever runs the runtime.
 */
import type { Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { top, type Bundle, type Runtime } from './runtime.js';
import type { Spec } from '../../src/spec/generated/config.js';

export interface CveEnv {
  /** Where the tests make their own files (directories, sockets); reachable by whoever runs the runtime. */
  work: string;
  rt: Runtime;
  /** A bundle whose config is the test spec (rootless: made rootless, and the user's), changed by `change`. */
  makeBundle(change: (s: Spec) => void): Bundle;
  /**
   * The argv that runs `sh -c SCRIPT` as an observer with what a container process has, on the host's /proc
   * (`pid`: the waiting init's): root without CAP_SYS_PTRACE; rootless, root of the container's user namespace
   * without CAP_SYS_PTRACE there.
   */
  observer(script: string, pid: number): string[];
  /** Gives a path the test made to whoever runs the runtime (rootless: the user), so an attack could use it. */
  own(path: string): void;
  /** Prefix of the tests' names. */
  label?: string;
}

export function cveRegressionTests(tap: { test(name: string, fn: (t: Test) => Promise<void>): unknown }, env: CveEnv): void {
  let n = 0;
  /** Runs a shell script in a fresh container: its output, exit status and bundle. */
  const inContainer = (script: string, change: (s: Spec) => void = () => {}) => {
    const b = env.makeBundle((s) => {
      s.process!.args = ['sh', '-c', script];
      change(s);
    });
    return { ...env.rt.run(['run', '--bundle', b.dir, `cve${n++}`]), bundle: b };
  };

  tap.test(`${env.label ?? ''}CVE-2025-31133: a masked path is never bound from a /dev/null that is not the null device`, async (t) => {
    const corePattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
    for (const [kind, make] of [
      ['a symlink to core_pattern', (dev: string) => symlinkSync('/proc/sys/kernel/core_pattern', join(dev, 'null'))],
      ['a regular file', (dev: string) => writeFileSync(join(dev, 'null'), '')],
    ] as const) {
      const dev = join(env.work, `dev-${n}`);
      mkdirSync(dev);
      make(dev);
      const r = inContainer('echo "|/bin/evil" > /proc/sys/kernel/core_pattern; echo ran', (s) => {
        // /dev comes from the bundle, so nothing replaces the attacker's /dev/null.
        s.mounts = s.mounts!.filter((m) => m.destination !== '/dev' && !m.destination.startsWith('/dev/'));
        s.mounts.push({ destination: '/dev', type: 'bind', source: dev, options: ['rbind'] });
        s.linux!.maskedPaths = ['/proc/sys/kernel/core_pattern', ...(s.linux!.maskedPaths ?? [])];
      });
      t.not(r.status, 0, kind);
      t.notMatch(r.stdout, /ran/);
      t.match(r.stderr, /mask path \(config.json \/linux\/maskedPaths\/0\): .*\/dev\/null is not the null device \(char 1:3\)/, kind);
    }
    t.equal(readFileSync('/proc/sys/kernel/core_pattern', 'utf8'), corePattern, 'the host core_pattern is unchanged');
  });

  tap.test(`${env.label ?? ''}CVE-2019-19921, CVE-2023-27561: /proc or /sys as a symlink in the rootfs is refused`, async (t) => {
    for (const dir of ['proc', 'sys']) {
      const b = env.makeBundle((s) => { s.process!.args = ['true']; });
      rmSync(join(b.rootfs, dir), { recursive: true });
      mkdirSync(join(b.rootfs, `fake${dir}`));
      symlinkSync(`/fake${dir}`, join(b.rootfs, dir));
      const r = env.rt.run(['run', '--bundle', b.dir, `cve${n++}`]);
      t.not(r.status, 0, dir);
      t.match(r.stderr, new RegExp(`mount \\(config.json /mounts/\\d+\\): mount ${dir === 'proc' ? 'proc' : 'sysfs'} on /${dir}: /${dir} is or goes through a symlink in the rootfs: refused`));
      t.same(readdirSync(join(b.rootfs, `fake${dir}`)), [], 'nothing was mounted behind the link');
    }
    // A relative link as well.
    const b = env.makeBundle((s) => { s.process!.args = ['true']; });
    mkdirSync(join(b.rootfs, 'elsewhere'));
    rmSync(join(b.rootfs, 'proc'), { recursive: true });
    symlinkSync('elsewhere', join(b.rootfs, 'proc'));
    const r = env.rt.run(['run', '--bundle', b.dir, `cve${n++}`]);
    t.match(r.stderr, /\/proc is or goes through a symlink/, 'a relative link as well');
  });

  tap.test(`${env.label ?? ''}CVE-2025-52565: /dev/console as a symlink is refused, /dev as a symlink stays inside the rootfs`, async (t) => {
    const sock = join(env.work, 'console.sock');
    const server = createServer((c) => c.on('error', () => {}).resume()).listen(sock);
    await new Promise((resolve) => server.once('listening', resolve));
    chmodSync(sock, 0o777); // for a runtime run by another user
    t.teardown(() => new Promise((resolve) => server.close(resolve)));
    const b = env.makeBundle((s) => {
      s.process!.args = ['true'];
      s.process!.terminal = true;
      s.mounts = s.mounts!.filter((m) => m.destination !== '/dev'); // /dev is the rootfs's own
    });
    symlinkSync('/proc/sysrq-trigger', join(b.rootfs, 'dev/console'));
    env.own(join(b.rootfs, 'dev/console'));
    const r = env.rt.run(['run', '--console-socket', sock, '--bundle', b.dir, `cve${n++}`]);
    t.not(r.status, 0);
    t.match(r.stderr, /bind the console on \/dev\/console: \/dev\/console is or goes through a symlink in the rootfs: refused/);

    const outside = join(env.work, 'dev-outside');
    mkdirSync(outside);
    env.own(outside);
    const d = env.makeBundle((s) => { s.process!.args = ['sh', '-c', 'ls /dev/null && readlink /dev']; });
    rmSync(join(d.rootfs, 'dev'), { recursive: true });
    symlinkSync(`../../../../../../../../..${outside}`, join(d.rootfs, 'dev'));
    env.own(join(d.rootfs, 'dev'));
    const ok = env.rt.run(['run', '--bundle', d.dir, `cve${n++}`]);
    t.equal(ok.status, 0, ok.stderr);
    t.same(readdirSync(outside), [], 'nothing was made on the host through the link');
    t.ok(existsSync(join(d.rootfs, outside)), 'the link was resolved inside the rootfs');
  });

  tap.test(`${env.label ?? ''}CVE-2021-30465: a mount destination swapped for a symlink while containers start stays inside`, async (t) => {
    const target = join(env.work, 'swap-target');
    mkdirSync(target);
    env.own(target);
    const b = env.makeBundle((s) => {
      s.process!.args = ['true'];
      for (let i = 0; i < 8; i++) s.mounts!.push({ destination: `/data/m${i}`, type: 'tmpfs', source: 'tmpfs' });
    });
    mkdirSync(join(b.rootfs, 'data'));
    symlinkSync(target, join(b.rootfs, 'datalink'));
    env.own(join(b.rootfs, 'data'));
    env.own(join(b.rootfs, 'datalink'));
    // Swap /data between a directory and a symlink to a host directory, as fast as possible.
    const swapper = spawn('sh', ['-c', `cd ${b.rootfs} && while :; do mv data data.d; mv datalink data; mv data datalink; mv data.d data; done`], { stdio: 'ignore' });
    const exited = new Promise((resolve) => swapper.on('exit', resolve));
    let ok = 0;
    try {
      for (let i = 0; i < 15; i++) if (env.rt.run(['run', '--bundle', b.dir, `cve${n++}`]).status === 0) ok++;
    } finally {
      swapper.kill('SIGKILL');
      await exited;
    }
    t.comment(`${ok} of 15 containers started while the path was being swapped`);
    t.same(readdirSync(target), [], 'no mount point was made on the host');
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    t.notOk(mounts.includes(target), 'nothing is mounted on the host target');
  });

  tap.test(`${env.label ?? ''}CVE-2019-5736: the host binary is out of reach; a created init is not dumpable`, async (t) => {
    const helper = join(top, 'dist/pocrun-init');
    const digest = () => createHash('sha256').update(readFileSync(helper)).digest('hex');
    const before = digest();
    const b = env.makeBundle((s) => { s.process!.args = ['sleep', '60']; });
    const id = `cve${n++}`;
    env.rt.ok(['create', '--bundle', b.dir, id]);
    t.teardown(() => void env.rt.run(['delete', '--force', id]));
    const pid = env.rt.state(id).pid;
    // Inside the container's namespaces, as root with every capability: the init is a read-only copy (the binary
    // on a private overlayfs, or a sealed memfd where that cannot be made), not the host file, and cannot be written.
    const inside = spawnSync('nsenter', ['-t', String(pid), '-m', '-p', '/bin/sh', '-c',
      'readlink /proc/1/exe; echo x >> /proc/1/exe; echo rc=$?; true > /proc/1/exe; echo rc=$?'], { encoding: 'utf8' });
    t.match(inside.stdout, /^(\/pocrun-init|\/memfd:pocrun-init \(deleted\))\nrc=1\nrc=1\n/, inside.stderr);
    // Without CAP_SYS_PTRACE (a container process's lot) nothing of the waiting init is reachable through /proc:
    // not its exe, and not its fds (O_PATH fds of the host state directory, CVE-2024-21626).
    const [bin, ...args] = env.observer(`readlink /proc/${pid}/exe || echo exe-denied; ls /proc/${pid}/fd/3/ || echo fd-denied; cd /proc/${pid}/cwd || echo cwd-denied`, pid);
    const probe = spawnSync(bin!, args, { encoding: 'utf8' });
    t.equal(probe.stdout, 'exe-denied\nfd-denied\ncwd-denied\n', probe.stderr);
    env.rt.ok(['start', id]);
    env.rt.waitStatus(id, 'running');
    t.equal(readlinkSafe(`/proc/${pid}/exe`), '/bin/busybox', 'after start the init is the container process');
    t.equal(digest(), before, 'dist/pocrun-init is unchanged');
  });


  tap.test(`${env.label ?? ''}CVE-2024-21626: no runtime fd reaches the process; a cwd through a leaked fd is refused`, async (t) => {
    const r = inContainer('ls /proc/self/fd | sort -n | tr "\\n" " "; readlink /proc/self/cwd');
    t.equal(r.stdout, '0 1 2 3 /\n', `fds 0-2 (3 is ls's own directory); ${r.stderr}`);
    // The helper's own fds at chdir time (state directory, exec.fifo, the root, /dev/null): a cwd through one of
    // them either fails or is inside the container, never on the host.
    let refused = 0;
    for (let fd = 3; fd <= 9; fd++) {
      const c = inContainer('pwd; ls /', (s) => { s.process!.cwd = `/proc/self/fd/${fd}`; });
      if (c.status === 0) {
        t.match(c.stdout, /^\/.*\nbin\n/s, `cwd /proc/self/fd/${fd} is inside the container`);
        t.notMatch(c.stdout, /unreachable|pocrun-it-/);
      } else {
        refused++;
        t.match(c.stderr, /change to cwd \(config.json \/process\/cwd\): chdir \/proc\/self\/fd\/\d+: /, `cwd /proc/self/fd/${fd}`);
        t.equal(c.stdout, '', 'the process never ran');
      }
    }
    t.ok(refused >= 5, 'the state directory, the fifo and the rest were refused');
    const detached = env.makeBundle((s) => { s.process!.args = ['sleep', '60']; });
    const id = `cve${n++}`;
    env.rt.ok(['run', '-d', '--bundle', detached.dir, id]);
    t.teardown(() => void env.rt.run(['delete', '--force', id]));
    const pid = env.rt.state(id).pid;
    t.same(readdirSync(`/proc/${pid}/fd`).sort(), ['0', '1', '2'], 'a detached init holds only its stdio');
    t.equal(readlinkSafe(`/proc/${pid}/cwd`), '/', 'its cwd is the root it was pivoted into');
  });
}

function readlinkSafe(path: string): string {
  const r = spawnSync('readlink', [path], { encoding: 'utf8' });
  return r.stdout.trim();
}
