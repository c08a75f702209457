/**
 * Shared by the engine conformance tests: which runtime the engines are given, the busybox rootfs, commands,
 * polling, and what a test must leave behind (nothing).
 *
 * POC_CONFORMANCE_RUNTIME picks the runtime: unset or `pocrun` is the built dist/pocrun; `runc` (or any other
 * name) is looked up in PATH; a path is used as it is. Running the same tests with runc proves the tests right.
 *
 * POC_CONFORMANCE_CGROUP_MANAGER picks the engines' cgroup manager: unset or `cgroupfs`, the runtime manages the
 * cgroups itself; `systemd` (where systemd is the init: the guest), the engines' systemd manager, which calls the
 * runtime with --systemd-cgroup and a `slice:prefix:name` cgroupsPath, in a slice of the test's own.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join } from 'node:path';

export const top = join(import.meta.dirname, '../..');

function resolveRuntime(): string {
  const wanted = process.env.POC_CONFORMANCE_RUNTIME;
  if (!wanted || wanted === 'pocrun') return join(top, 'dist/pocrun');
  if (isAbsolute(wanted) || wanted.includes('/')) return wanted;
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', wanted], { encoding: 'utf8' });
  const path = r.stdout.trim();
  if (r.status !== 0 || !path) throw new Error(`POC_CONFORMANCE_RUNTIME=${wanted}: not found in PATH`);
  return path;
}

/** The runtime binary the engines run (an absolute path). */
export const RUNTIME = resolveRuntime();
/** Whether that runtime is pocrun (its own messages are checked then). */
export const IS_POCRUN = basename(RUNTIME) === 'pocrun';

function resolveCgroupManager(): 'cgroupfs' | 'systemd' {
  const wanted = process.env.POC_CONFORMANCE_CGROUP_MANAGER ?? 'cgroupfs';
  if (wanted !== 'cgroupfs' && wanted !== 'systemd') throw new Error(`POC_CONFORMANCE_CGROUP_MANAGER=${wanted}: cgroupfs or systemd`);
  if (wanted === 'systemd' && !existsSync('/run/systemd/system')) {
    throw new Error('POC_CONFORMANCE_CGROUP_MANAGER=systemd: systemd is not the init here; run it in the guest (scripts/guest/test.sh)');
  }
  return wanted;
}

/** The engines' cgroup manager. */
export const CGROUP_MANAGER = resolveCgroupManager();
export const SYSTEMD = CGROUP_MANAGER === 'systemd';

/** The units systemd has loaded whose names contain `text`: what a test could leave behind with systemd. */
export function unitsMentioning(text: string): string[] {
  if (!SYSTEMD) return [];
  return sh('systemctl', ['list-units', '--all', '--plain', '--no-legend', '--no-pager']).stdout
    .split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter((u) => u && u.includes(text));
}

/** Stops a slice the test's containers were placed in (and what is left below it); missing is fine. */
export function stopSlice(slice: string): void {
  if (SYSTEMD) sh('systemctl', ['stop', slice]);
}

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}): Result {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
  if (r.error) return { status: null, stdout: '', stderr: `${cmd}: ${r.error.message}` };
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** Runs and insists on success, returning stdout. */
export function must(cmd: string, args: string[], opts: SpawnSyncOptions = {}): string {
  const r = sh(cmd, args, opts);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Shell-quotes one word (for `script -qec "..."`). */
export function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command that needs a terminal on stdin (`ctr -t`), run under script(1): its output, its exit status. */
export function inTerminal(argv: string[], timeout = 60_000): Result {
  return sh('script', ['-qec', argv.map(quote).join(' '), '/dev/null'], { timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

export function sleep(seconds: number): void {
  spawnSync('sleep', [String(seconds)]);
}

/** Polls `check` until it returns a value other than undefined, or throws after the timeout. */
export function waitFor<T>(what: string, check: () => T | undefined, timeoutMs = 10_000): T {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    sleep(0.05);
  }
}

export function commandExists(name: string): boolean {
  return sh('sh', ['-c', 'command -v "$1"', 'sh', name]).status === 0;
}

/** The host path of a process's cgroup for a v1 controller (or the v2 unified one), from /proc/PID/cgroup. */
export function hostCgroupDir(pid: number, controller: string): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines.find((l) => l.split(':')[1]!.split(',').includes(controller));
  if (v1 && existsSync(join('/sys/fs/cgroup', controller))) return join('/sys/fs/cgroup', controller, v1.split(':').slice(2).join(':'));
  const v2 = lines.find((l) => l.startsWith('0::'))!;
  return join('/sys/fs/cgroup', v2.slice(3));
}

/** Removes a cgroup the test made (and its sub-cgroups, deepest first) in every hierarchy; missing is fine. */
export function removeCgroupTree(relative: string): string[] {
  const left: string[] = [];
  const remove = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) remove(join(dir, e.name));
    try {
      rmdirSync(dir);
    } catch {
      left.push(dir);
    }
  };
  for (const controller of readdirSync('/sys/fs/cgroup')) remove(join('/sys/fs/cgroup', controller, relative));
  if (existsSync(join('/sys/fs/cgroup/cgroup.controllers'))) remove(join('/sys/fs/cgroup', relative));
  return left;
}

/** Mount points at or under a directory (in our mount namespace). */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Processes whose command line mentions a string (the test's work directory): what a test could leave running. */
export function processesMentioning(text: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes(text)) out.push(`${pid} ${cmdline.slice(0, 200)}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Where a podman of the test's own keeps its store, and how it manages cgroups. */
export interface PodmanConfig {
  graphroot: string;
  runroot: string;
  cgroupManager: string;
  /** netavark's configuration directory, for a podman that makes networks (root). */
  networkConfigDir?: string;
}

/**
 * Writes podman's containers.conf, storage.conf and registries.conf into DIR, private to the test: no registry
 * (images are imported, pull_policy never), file events and locks, k8s-file logs, default ulimits within the
 * host's hard limits (CAP_SYS_RESOURCE may be missing), and the runtimes that log JSON. Returns the environment
 * that points podman at them.
 */
export function writePodmanConfig(dir: string, c: PodmanConfig): Record<string, string> {
  const hard = (flag: string, fallback: number) => Number(sh('sh', ['-c', `ulimit -H${flag}`]).stdout.trim()) || fallback;
  const nofile = Math.min(hard('n', 1024), 1024);
  const nproc = Math.min(hard('u', 4096), 4096);
  const network = c.networkConfigDir
    ? `\n[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "${c.networkConfigDir}"\n`
    : '';
  writeFileSync(join(dir, 'containers.conf'), `[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
log_driver = "k8s-file"
${network}
[engine]
cgroup_manager = "${c.cgroupManager}"
events_logger = "file"
lock_type = "file"
pull_policy = "never"
# podman passes --log-format=json --log FILE to the runtimes named here, and shows the error they log.
runtime_supports_json = ["crun", "runc", "pocrun"]
`);
  writeFileSync(join(dir, 'storage.conf'), `[storage]
driver = "overlay"
graphroot = "${c.graphroot}"
runroot = "${c.runroot}"
`);
  writeFileSync(join(dir, 'registries.conf'), 'unqualified-search-registries = []\n');
  return {
    CONTAINERS_CONF: join(dir, 'containers.conf'),
    CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'),
    CONTAINERS_REGISTRIES_CONF: join(dir, 'registries.conf'),
  };
}
