/**
 * A private containerd for tests that drive it with `ctr` (its CRI plugin disabled), the one set-up of
 * conformance/containerd.test.ts and test/guest/checkpoint-engines.test.ts: own root, state, sockets and config
 * under the test's work directory, the runtime's state (--runc-root) and ctr's fifos there too, a namespace named
 * after the test process, the busybox rootfs imported as an OCI image built offline (umoci). With
 * POC_CONFORMANCE_CGROUP_MANAGER=systemd (engines.ts) a test puts its containers in a slice of its own (`slice`).
 * `stop()` removes every task, container and image of the namespace, stops the daemon and its shims, stops the
 * slice, and says what could not be removed (processes, mounts, cgroups, systemd units).
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxRootfs } from './runtime.js';
import { ociImageArchive } from './oci-image.js';
import { mountsUnder, processesMentioning, removeCgroupTree, sh, stopSlice, unitsMentioning, waitFor, type Result } from './engines.js';

export const BUSYBOX_IMAGE = 'localhost/busybox:latest';

/** What a stopped containerd left behind: every list empty when the test cleaned up after itself. */
export interface Leftovers {
  processes: string[];
  mounts: string[];
  cgroups: string[];
  units: string[];
}

export interface Containerd {
  /** The namespace the containers live in (their cgroups are /<namespace>/<id> with cgroupfs). */
  ns: string;
  /** containerd's socket (for `ctr --address` in a command the test builds itself, e.g. under script(1)). */
  address: string;
  /** The runtime's --root as the shim passes it (`ctr run --runc-root`): its state is under <runcRoot>/<ns>/<id>. */
  runcRoot: string;
  /** Where ctr makes its fifos (`--fifo-dir`), inside the work directory. */
  fifoDir: string;
  /** systemd's cgroup manager: the slice of the test's containers (one word: systemd would nest dashed parts). */
  slice: string;
  ctr(args: string[], timeout?: number): Result;
  /** `ctr` that must succeed: its stdout. */
  ok(args: string[], timeout?: number): string;
  /** `ctr task ls`: task → [pid, status]. */
  tasks(): Map<string, [number, string]>;
  /** Stops it all (once; later calls return the first answer). */
  stop(): Leftovers;
}

export function startContainerd(work: string): Containerd {
  const ns = `pocrun-test-${process.pid}`;
  const slice = `pocruntest${process.pid}.slice`;
  const address = join(work, 'containerd.sock');
  const runcRoot = join(work, 'runc-root');
  const fifoDir = join(work, 'fifo');
  /** /run/containerd holds the shims' sockets (a fixed path in containerd 1.6): removed at the end if we made it. */
  const runContainerdExisted = existsSync('/run/containerd');
  mkdirSync(fifoDir, { recursive: true });
  // The log level is containerd's default (info): containerd.log in the work directory says why a task failed.
  writeFileSync(join(work, 'config.toml'), `version = 2
root = "${join(work, 'root')}"
state = "${join(work, 'state')}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "${address}"

[ttrpc]
  address = "${address}.ttrpc"

[metrics]
  address = ""
`);
  const log = openSync(join(work, 'containerd.log'), 'w');
  const daemon = spawn('containerd', ['--config', join(work, 'config.toml')], { stdio: ['ignore', log, log], detached: true });
  closeSync(log);
  daemon.unref();
  const ctr = (args: string[], timeout = 120_000) => sh('ctr', ['--address', address, '--namespace', ns, ...args], { timeout });
  const ok = (args: string[], timeout?: number) => {
    const r = ctr(args, timeout);
    if (r.status !== 0) throw new Error(`ctr ${args.join(' ')}: exit ${r.status}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  let left: Leftovers | undefined;
  const stop = (): Leftovers => {
    if (left) return left;
    for (const id of ctr(['task', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['task', 'delete', '--force', id]);
    for (const id of ctr(['containers', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['containers', 'rm', id]);
    for (const ref of ctr(['images', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['images', 'rm', ref]);
    ctr(['namespaces', 'rm', ns]);
    try {
      process.kill(daemon.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
    try {
      waitFor('containerd and its shims to end', () => (processesMentioning(work).length ? undefined : true), 20_000);
    } catch {
      /* reported below */
    }
    for (const m of mountsUnder(work).reverse()) sh('umount', ['-l', m]);
    // systemd: the containers' scopes must be gone by now; the slice is the test's own, stopped here.
    const scopes = unitsMentioning(ns);
    stopSlice(slice);
    left = {
      processes: processesMentioning(work),
      mounts: mountsUnder(work),
      cgroups: [...removeCgroupTree(ns), ...removeCgroupTree(slice)],
      units: [...scopes, ...unitsMentioning(slice)],
    };
    if (!runContainerdExisted) {
      for (const dir of ['/run/containerd/s', '/run/containerd/fifo', '/run/containerd']) {
        try {
          if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
        } catch {
          /* someone else's now */
        }
      }
    }
    return left;
  };
  const tasks = () => {
    const out = new Map<string, [number, string]>();
    for (const line of ok(['task', 'ls']).trim().split('\n').slice(1)) {
      const [id, pid, st] = line.trim().split(/\s+/);
      if (id) out.set(id, [Number(pid), st!]);
    }
    return out;
  };
  try {
    waitFor('containerd to answer', () => (ctr(['version'], 5_000).status === 0 ? true : undefined), 60_000);
    const archive = ociImageArchive(work, 'busybox', {
      fill: (rootfs) => busyboxRootfs(rootfs),
      config: ['--config.cmd', 'sh', '--config.env', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'],
    });
    ok(['images', 'import', '--base-name', 'localhost/busybox', archive]);
  } catch (err) {
    stop();
    throw err;
  }
  return { ns, address, runcRoot, fifoDir, slice, ctr, ok, tasks, stop };
}
