/**
 * Integration test helpers: real busybox bundles, the built pocrun binary, and a residue check that a test
 * left nothing behind (state directories, mounts, cgroups, processes).
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { closeSync, openSync, rmdirSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultSpec } from '../../src/spec/default.js';
import type { Spec } from '../../src/spec/generated/config.js';
import type { Test } from 'tap';

export const top = join(import.meta.dirname, '../..');
export const POCRUN = join(top, 'dist/pocrun');
/** The TypeScript program the native front (dist/pocrun) hands most commands to. */
export const POCRUN_TS = join(top, 'dist/pocrun-ts');
/**
 * Every cgroup a test file makes is under this parent, in each v1 controller: one per test process, so that
 * test files (and people) running at the same time never see each other's cgroups as residue.
 */
export const TEST_CGROUP_PARENT = `pocrun-test/${process.pid}`;

const cache = join(tmpdir(), 'pocrun-test-rootfs');

/** A busybox rootfs, built once per machine and copied for each bundle (~30 ms). */
export function busyboxRootfs(into: string): void {
  if (!existsSync(join(cache, 'bin/busybox'))) {
    rmSync(cache, { recursive: true, force: true });
    const r = spawnSync(join(top, 'bundles/make-busybox-rootfs.sh'), [cache], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('cannot build the busybox rootfs');
  }
  cpSync(cache, into, { recursive: true, verbatimSymlinks: true });
}

/** Gone, or a zombie waiting for its reaper (here pid 1 reaps reparented children with a delay). */
export function isDead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

export interface Bundle {
  dir: string;
  rootfs: string;
  spec: Spec;
}

let counter = 0;
let outputs = 0;

/** pocrun's global flags that take a value: the command is the first argument that is not one of them or a flag. */
const GLOBAL_FLAGS_WITH_VALUE = new Set(['--root', '--log', '--log-format', '--criu']);

/** The command of a pocrun command line (`--systemd-cgroup create ...` is a create). */
function commandOf(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (GLOBAL_FLAGS_WITH_VALUE.has(args[i]!)) i++;
    else if (!args[i]!.startsWith('-')) return args[i];
  }
  return undefined;
}

/** A bundle whose config is the default spec without a terminal, changed by `change`. */
export function makeBundle(work: string, change: (s: Spec) => void = () => {}, name = `bundle${counter++}`): Bundle {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const rootfs = join(dir, 'rootfs');
  busyboxRootfs(rootfs);
  const spec = defaultSpec();
  spec.process!.terminal = false;
  spec.root!.readonly = false;
  spec.linux!.cgroupsPath = `/${TEST_CGROUP_PARENT}/${name}`;
  change(spec);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(spec, null, 2));
  return { dir, rootfs, spec };
}

export interface Result {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class Runtime {
  readonly root: string;
  constructor(
    readonly work: string,
    readonly bin = POCRUN,
    /** An argv that runs the runtime as someone else (test/helpers/rootless.ts: runuser as the test's user). */
    readonly prefix: string[] = [],
    root = join(work, 'root'),
  ) {
    this.root = root;
  }

  private spawn(args: string[], opts: SpawnSyncOptions) {
    const argv = [...this.prefix, this.bin, '--root', this.root, ...args];
    return spawnSync(argv[0]!, argv.slice(1), opts);
  }

  run(args: string[], opts: SpawnSyncOptions = {}): Result {
    // A created or detached container inherits pocrun's stdio, as with runc: pipes would stay open until the
    // container exits, so those commands write to a file instead.
    const command = commandOf(args);
    const detached = command === 'create' || (command === 'run' && (args.includes('-d') || args.includes('--detach')));
    if (detached && !opts.stdio) {
      const file = join(this.work, `out-${process.pid}-${outputs++}`);
      const fd = openSync(file, 'w+');
      try {
        const r = this.spawn(args, { timeout: 60_000, ...opts, stdio: ['ignore', fd, fd] });
        const out = readFileSync(file, 'utf8');
        return { status: r.status, signal: r.signal, stdout: out, stderr: out };
      } finally {
        closeSync(fd);
        rmSync(file, { force: true });
      }
    }
    const r = this.spawn(args, { encoding: 'utf8', timeout: 60_000, ...opts });
    return { status: r.status, signal: r.signal, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  }

  /** Runs and insists on success, returning stdout. */
  ok(args: string[], opts: SpawnSyncOptions = {}): string {
    const r = this.run(args, opts);
    if (r.status !== 0) throw new Error(`pocrun ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  state(id: string): { status: string; pid: number; [k: string]: unknown } {
    return JSON.parse(this.ok(['state', id]));
  }

  /** Polls until the container reaches a status (or the timeout passes). */
  waitStatus(id: string, status: string, timeoutMs = 10_000): void {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.state(id).status === status) return;
      spawnSync('sleep', ['0.02']);
    }
    throw new Error(`container ${id} did not become ${status}: ${JSON.stringify(this.state(id))}`);
  }

  cleanup(): void {
    if (!existsSync(this.root)) return;
    for (const id of stateDirs(this.root)) this.run(['delete', '--force', id]);
  }
}

/**
 * Where this test process's cgroups live: TEST_CGROUP_PARENT in each v1 controller, or in the one cgroup2
 * hierarchy when /sys/fs/cgroup is one (the guest, scripts/guest/).
 */
export function testCgroupParents(): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return [join('/sys/fs/cgroup', TEST_CGROUP_PARENT)];
  return readdirSync('/sys/fs/cgroup').map((controller) => join('/sys/fs/cgroup', controller, TEST_CGROUP_PARENT));
}

/** What a test could leave behind: our state dirs, mounts under its work dir, test cgroups, our children. */
export interface Snapshot {
  mounts: string[];
  cgroups: string[];
  stateDirs: string[];
  children: string[];
}

export function snapshot(work: string, root?: string): Snapshot {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(work) || l.includes('pocrun-test'));
  const cgroups: string[] = [];
  for (const dir of testCgroupParents()) {
    if (existsSync(dir)) for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) cgroups.push(join(dir, child.name));
  }
  const children = spawnSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' }).stdout
    .split('\n').map((l) => l.trim()).filter((l) => l && !/\bps -o\b/.test(l));
  return { mounts, cgroups, stateDirs: root ? stateDirs(root) : [], children };
}

/** The containers' state directories under a root (not the root's own files, such as .create-slots). */
export function stateDirs(root: string): string[] {
  return existsSync(root) ? readdirSync(root).filter((name) => !name.startsWith('.')) : [];
}

/**
 * A fresh work directory with a runtime. Call `residue(t)` in the file's last test: it fails on anything the
 * tests left behind (compared with the state before), then removes it all.
 */
export function setup(): { work: string; rt: Runtime; residue: (t: Test) => void } {
  const work = mkdtempSync(join(tmpdir(), 'pocrun-it-'));
  const rt = new Runtime(work);
  const before = snapshot(work, rt.root);
  return {
    work,
    rt,
    residue: (t) => {
      const after = snapshot(work, rt.root);
      rt.cleanup();
      rmSync(work, { recursive: true, force: true });
      for (const dir of testCgroupParents()) {
        try {
          rmdirSync(dir);
        } catch {
          /* never made in this controller, or not empty: then the comparison below fails */
        }
      }
      t.same(after, before, 'nothing left behind: state, mounts, cgroups, processes');
    },
  };
}

/** Online CPUs, as the native front counts them (sysconf _SC_NPROCESSORS_ONLN). */
export const ONLINE_CPUS = Number(spawnSync('getconf', ['_NPROCESSORS_ONLN'], { encoding: 'utf8' }).stdout);
/** The front's admission slots (src/native/front/admission.c: 2 per CPU), watched with test/helpers/slots.py. */
export const ADMISSION_SLOTS = 2 * ONLINE_CPUS;
export const SLOTS_PY = join(top, 'test/helpers/slots.py');

/** How many of a root's admission slots are free now. */
export function freeSlots(root: string): number {
  return Number(spawnSync('python3', [SLOTS_PY, 'free', root, String(ADMISSION_SLOTS)], { encoding: 'utf8' }).stdout);
}
