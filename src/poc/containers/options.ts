/**
 * `poc create` / `poc run` flags → a checked container configuration (pure). Every bad value is an error that
 * names the flag and the value; nothing here touches the system (files are read through `readFile`).
 */
import { PocError } from '../errors.js';
import { CAPABILITIES, capabilityNumber } from '../../vocabulary/capabilities.js';
import { checkName } from '../poc-root.js';
import { parsePublish, type PortMapping } from '../network/publish.js';
import type { NetworkMode } from '../network/etc-files.js';
import { cgroupfsParent } from './cgroup-parent.js';
import { parseRootlessFlags, type RootlessOptions, type UserDelegation } from '../rootless.js';
import { parseNetworkFlags, type ExtraHost, type NetworkAttachmentOptions, type NetworkFlags } from '../network/flags.js';
import { parseProfile } from './seccomp-profile.js';
import { slicePath } from '../../vocabulary/systemd-slice.js';
import { checkDuplicateTargets, parseMountFlag, parseVolumeFlag, type Volume } from '../volumes/spec.js';
import { parseRestart, type RestartPolicy } from './restart.js';
import { parseHealthFlags, type HealthConfig, type HealthFlags } from './health.js';

export type { Volume } from '../volumes/spec.js';
import {
  parseDevice, parseGroupAdd, parseLabels, parseShmSize, parseStopSignal, parseStopTimeout, parseSysctl, parseTmpfs, parseUlimit,
  type DeviceRequest, type TmpfsMount, type Ulimit,
} from './docker-options.js';

/**
 * The flags as the command line gives them (strings, lists), before any checking. NetworkFlags: --network
 * (repeatable), --network-alias, --ip, --dns, --add-host, checked by src/poc/network/flags.ts.
 */
export interface RunFlags extends HealthFlags, NetworkFlags {
  detach: boolean;
  interactive: boolean;
  tty: boolean;
  rm: boolean;
  name?: string;
  hostname?: string;
  env: string[];
  envFiles: string[];
  volumes: string[];
  /** --mount type=bind|volume|tmpfs,... */
  mounts?: string[];
  /** --restart no|on-failure[:N]|always|unless-stopped */
  restart?: string;
  workdir?: string;
  user?: string;
  publish: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: string;
  readOnly: boolean;
  capAdd: string[];
  capDrop: string[];
  /** --security-opt: no-new-privileges[=true|false], seccomp=unconfined|FILE. */
  securityOpts: string[];
  entrypoint?: string;
  /** --cgroup-manager systemd|cgroupfs, --cgroup-parent PATH (a slice with systemd), as podman takes them. */
  cgroupManager?: string;
  cgroupParent?: string;
  /** Docker's: checked in docker-options.ts. */
  privileged: boolean;
  devices: string[];
  groupAdd: string[];
  ulimits: string[];
  sysctls: string[];
  tmpfs: string[];
  shmSize?: string;
  init: boolean;
  stopSignal?: string;
  stopTimeout?: string;
  labels: string[];
  image: string;
  command: string[];
}

export interface Resources {
  /** Bytes. */
  memory?: number;
  /** CPUs, as given (1.5): quota = cpus × period. */
  cpus?: number;
  pidsLimit?: number;
}

/** What a container is made from, checked; stored in container.json and turned into config.json by planBundle. */
export interface ContainerOptions {
  name?: string;
  hostname?: string;
  /** Only the -e / --env-file settings (merged over the image's Env by planBundle). */
  env: string[];
  /** -v and --mount: binds, volumes (anonymous ones named at create, an image's VOLUMEs added) and tmpfs. */
  volumes: Volume[];
  /** --restart (absent: no). */
  restart?: RestartPolicy;
  /** The --health-* flags' part (merged over the image's HEALTHCHECK at create: ContainerRecord.healthcheck). */
  healthcheck?: HealthConfig;
  workdir?: string;
  user?: string;
  publish: PortMapping[];
  network: NetworkMode;
  /** User networks (and "bridge" when named with them), in order; absent: the default network alone. */
  networks?: NetworkAttachmentOptions[];
  /** --dns: the container's nameservers. */
  dns?: string[];
  /** --add-host lines for /etc/hosts. */
  extraHosts?: ExtraHost[];
  resources: Resources;
  readOnly: boolean;
  capAdd: string[];
  capDrop: string[];
  /** --security-opt no-new-privileges. */
  noNewPrivileges: boolean;
  /**
   * Which seccomp filter: poc's default profile (as docker's, src/poc/containers/default-seccomp.ts), none
   * (seccomp=unconfined, or --privileged), or a file's (seccompProfile). Unset in containers made before the
   * default: none.
   */
  seccomp?: 'default' | 'unconfined' | 'file';
  /** --security-opt seccomp=FILE: the profile as the file gives it (Docker's format or OCI's). */
  seccompProfile?: unknown;
  /** All capabilities, the host's devices, no masked or read-only paths, no seccomp, /sys writable. */
  privileged?: boolean;
  devices?: DeviceRequest[];
  /** Group names or gids, added to the process's supplementary groups. */
  groupAdd?: string[];
  ulimits?: Ulimit[];
  sysctls?: Record<string, string>;
  tmpfs?: TmpfsMount[];
  /** Bytes of /dev/shm (64 MiB by default). */
  shmSize?: number;
  /** A small reaper (catatonit) as PID 1, running the command. */
  init?: boolean;
  /** What `poc stop` sends first (the image's StopSignal, else SIGTERM), and how long it waits for it. */
  stopSignal?: string;
  stopTimeout?: number;
  labels?: Record<string, string>;
  /** null: the image's; [] (from --entrypoint ""): none. */
  entrypoint: string[] | null;
  /** [] : the image's Cmd. */
  command: string[];
  tty: boolean;
  interactive: boolean;
  autoRemove: boolean;
  /**
   * Who makes the container's cgroup: pocrun itself (cgroupfs, below `parent`, /poc by default) or systemd (a scope
   * poc-<id>.scope in the slice `parent`, machine.slice by default, as podman's). Unset in containers made
   * before it: cgroupfs under /poc.
   */
  cgroup?: CgroupOptions;
  /** A rootless container (src/poc/rootless.ts): slirp4netns, pasta or none, poc's user namespace, a cgroup only where delegated. */
  rootless?: RootlessOptions;
}

export interface CgroupOptions {
  manager: 'systemd' | 'cgroupfs';
  parent: string;
  /** Rootless: the uid whose own systemd (user@UID.service) holds the scope. */
  user?: number;
}

export interface ResolveContext {
  /** Reads an --env-file; throws when missing. */
  readFile: (path: string) => string;
  /** The environment `-e NAME` (without =) takes its value from. */
  hostEnv: Record<string, string | undefined>;
  /** CPUs of the host: --cpus may not ask for more. */
  cpuCount: number;
  /** Whether systemd is the init (then its cgroup manager is the default, as podman's). */
  systemdRunning: boolean;
  /** poc runs as an ordinary user (src/poc/rootless.ts). */
  rootless?: boolean;
  /** Rootless: what the user's own systemd delegates to it, where it does (rootless.ts). */
  userDelegation?: UserDelegation;
}

/** --cgroup-manager and --cgroup-parent, checked; systemd is the default where it runs, as with podman. */
export function parseCgroupOptions(manager: string | undefined, parent: string | undefined, systemdRunning: boolean): CgroupOptions {
  const m = manager ?? (systemdRunning ? 'systemd' : 'cgroupfs');
  if (m !== 'systemd' && m !== 'cgroupfs') throw new PocError(`invalid --cgroup-manager ${JSON.stringify(m)}: use systemd or cgroupfs`);
  if (m === 'systemd') {
    if (!systemdRunning) throw new PocError('--cgroup-manager systemd: systemd is not running on this host; use --cgroup-manager cgroupfs');
    const slice = parent ?? 'machine.slice';
    if (slicePath(slice) === undefined) {
      throw new PocError(`invalid --cgroup-parent ${JSON.stringify(slice)}: with the systemd cgroup manager it is a slice, such as machine.slice`);
    }
    return { manager: m, parent: slice };
  }
  const path = parent ?? '/poc';
  const normal = cgroupfsParent(path);
  if (normal === undefined) {
    throw new PocError(`invalid --cgroup-parent ${JSON.stringify(path)}: with the cgroupfs manager it is an absolute cgroup path, such as /poc`);
  }
  return { manager: m, parent: normal };
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
/** Docker refuses less: a container cannot even start in it. */
export const MIN_MEMORY = 6 * 1024 * 1024;

/** `512m`, `1g`, `1.5g`, `1048576`, `64MB` → bytes. */
/** `what`: the flag (or compose key) named in the errors. */
export function parseMemory(text: string, what = '-m'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(text.trim());
  if (!m) throw new PocError(`invalid memory size ${JSON.stringify(text)} for ${what}: use a number with an optional unit b, k, m or g (512m, 1g)`);
  const bytes = Math.floor(Number(m[1]) * UNITS[m[2]!.toLowerCase()]!);
  if (bytes < MIN_MEMORY) throw new PocError(`memory limit ${text} for ${what} is too small: at least 6m`);
  return bytes;
}

export function parseCpus(text: string, cpuCount: number, what = '--cpus'): number {
  if (!/^\d*\.?\d+$/.test(text.trim())) throw new PocError(`invalid ${what} ${JSON.stringify(text)}: use a positive number such as 1.5`);
  const n = Number(text);
  if (n < 0.01) throw new PocError(`invalid ${what} ${text}: at least 0.01`);
  if (n > cpuCount) throw new PocError(`invalid ${what} ${text}: this machine has ${cpuCount} CPU${cpuCount > 1 ? 's' : ''}`);
  return n;
}

export function parsePidsLimit(text: string, what = '--pids-limit'): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < 1) throw new PocError(`invalid ${what} ${JSON.stringify(text)}: use a positive integer`);
  return Number(text);
}

/** `-v`: see src/poc/volumes/spec.ts. */
export const parseVolume = parseVolumeFlag;

function normalize(path: string): string {
  const out = path.split('/').filter((c) => c !== '' && c !== '.');
  return `/${out.join('/')}`;
}

/** `-e K=V`, or `-e K` (the value from the host's environment; left out when the host has none). */
export function parseEnvSetting(setting: string, hostEnv: Record<string, string | undefined>, where: string): string | undefined {
  const eq = setting.indexOf('=');
  const name = eq < 0 ? setting : setting.slice(0, eq);
  if (name === '' || /\s/.test(name)) throw new PocError(`${where}: invalid environment variable ${JSON.stringify(setting)}`);
  if (eq >= 0) return setting;
  const value = hostEnv[name];
  return value === undefined ? undefined : `${name}=${value}`;
}

/** An env file: `K=V` lines, `K` alone takes the host's value; blank lines and `#` comments skipped. */
export function parseEnvFile(text: string, path: string, hostEnv: Record<string, string | undefined>): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const setting = parseEnvSetting(line.trimStart(), hostEnv, `--env-file ${path} line ${i + 1}`);
    if (setting !== undefined) out.push(setting);
  });
  return out;
}

/** Later settings of a name replace earlier ones, keeping the first one's place. */
export function mergeEnv(...lists: string[][]): string[] {
  const map = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list) {
      const eq = kv.indexOf('=');
      map.set(eq < 0 ? kv : kv.slice(0, eq), kv);
    }
  }
  return [...map.values()];
}

function checkCap(name: string, flag: string): string {
  if (name.toUpperCase() === 'ALL') return 'ALL';
  const n = capabilityNumber(name);
  if (n === undefined) throw new PocError(`invalid ${flag} ${JSON.stringify(name)}: unknown capability`);
  return CAPABILITIES[n]!;
}

/**
 * --security-opt, as docker takes it: `no-new-privileges` (also `=true`, `=false`, or with ":"), and
 * `seccomp=unconfined` (no filter; poc's default profile otherwise) or `seccomp=FILE`. Anything else is refused.
 */
function parseSecurityOpts(opts: string[], ctx: ResolveContext): Pick<ContainerOptions, 'noNewPrivileges' | 'seccomp' | 'seccompProfile'> {
  let noNewPrivileges = false;
  let seccomp: ContainerOptions['seccomp'] = 'default';
  let seccompProfile: unknown;
  for (const opt of opts) {
    const m = /^([a-z-]+)(?:[=:](.*))?$/.exec(opt);
    const [key, value] = m ? [m[1]!, m[2]] : ['', undefined];
    if (key === 'no-new-privileges' && (value === undefined || value === 'true' || value === 'false')) {
      noNewPrivileges = value !== 'false';
    } else if (key === 'seccomp' && value === 'unconfined') {
      seccomp = 'unconfined';
      seccompProfile = undefined;
    } else if (key === 'seccomp' && value) {
      let text: string;
      try {
        text = ctx.readFile(value);
      } catch (err) {
        throw new PocError(`cannot read --security-opt seccomp=${value}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message}`);
      }
      seccomp = 'file';
      seccompProfile = parseProfile(text, value);
    } else {
      throw new PocError(`unsupported --security-opt ${JSON.stringify(opt)}: poc takes no-new-privileges, seccomp=unconfined and seccomp=FILE`);
    }
  }
  return { noNewPrivileges, seccomp, ...(seccompProfile !== undefined ? { seccompProfile } : {}) };
}

/** Checks every flag and reads the env files; the image and the volumes' host paths are checked by the caller. */
export function resolveRunFlags(f: RunFlags, ctx: ResolveContext): ContainerOptions {
  if (f.name !== undefined) checkName('container', f.name);
  if (f.hostname !== undefined && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(f.hostname)) {
    throw new PocError(`invalid --hostname ${JSON.stringify(f.hostname)}: letters, digits, "." and "-", at most 63`);
  }
  if (ctx.rootless && f.network.length > 1) throw new PocError(`--network ${f.network.join(', ')}: a rootless container has one network, slirp4netns, pasta or none`);
  const rootless = ctx.rootless ? parseRootlessFlags({ ...f, network: f.network[0] }, ctx.userDelegation) : undefined;
  // Rootless: slirp4netns, pasta or none (rootless.ts); --dns and --add-host still apply, user networks need root.
  const net = rootless ? { ...parseNetworkFlags({ ...f, network: [] }), network: rootless.network } : parseNetworkFlags(f);
  const network = net.network;
  const publish = f.publish.flatMap(parsePublish);
  if (publish.length > 0 && !['bridge', 'slirp4netns', 'pasta'].includes(network)) {
    throw new PocError(`-p needs --network bridge${rootless ? ', slirp4netns or pasta' : ''} (the network is ${network})`);
  }
  const fromFiles = f.envFiles.flatMap((path) => {
    let text: string;
    try {
      text = ctx.readFile(path);
    } catch (err) {
      throw new PocError(`cannot read --env-file ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message}`);
    }
    return parseEnvFile(text, path, ctx.hostEnv);
  });
  const fromFlags = f.env.map((e) => parseEnvSetting(e, ctx.hostEnv, '-e')).filter((e): e is string => e !== undefined);
  if (f.workdir !== undefined && !f.workdir.startsWith('/')) throw new PocError(`invalid -w ${JSON.stringify(f.workdir)}: the working directory must be absolute`);
  if (f.user !== undefined && !/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(f.user)) {
    throw new PocError(`invalid -u ${JSON.stringify(f.user)}: use UID[:GID] or NAME[:GROUP]`);
  }
  const security = parseSecurityOpts(f.securityOpts, ctx);
  const cgroup = rootless ? rootless.cgroup : parseCgroupOptions(f.cgroupManager, f.cgroupParent, ctx.systemdRunning);
  const volumes = [...f.volumes.map(parseVolumeFlag), ...(f.mounts ?? []).map(parseMountFlag)];
  checkDuplicateTargets(volumes);
  const restart = f.restart !== undefined ? parseRestart(f.restart) : undefined;
  if (restart && restart.Name !== 'no' && f.rm) throw new PocError('conflicting options: --restart and --rm (a container removed when it exits cannot be restarted)');
  const healthcheck = parseHealthFlags(f);
  const resources: Resources = {};
  if (f.memory !== undefined) resources.memory = parseMemory(f.memory);
  if (f.cpus !== undefined) resources.cpus = parseCpus(f.cpus, ctx.cpuCount);
  if (f.pidsLimit !== undefined) resources.pidsLimit = parsePidsLimit(f.pidsLimit);
  return {
    ...(f.name !== undefined ? { name: f.name } : {}),
    ...(f.hostname !== undefined ? { hostname: f.hostname } : {}),
    env: mergeEnv(fromFiles, fromFlags),
    volumes,
    ...(restart ? { restart } : {}),
    ...(healthcheck ? { healthcheck } : {}),
    ...(f.workdir !== undefined ? { workdir: normalize(f.workdir) } : {}),
    ...(f.user !== undefined ? { user: f.user } : {}),
    publish,
    ...net,
    resources,
    readOnly: f.readOnly,
    capAdd: f.capAdd.map((c) => checkCap(c, '--cap-add')),
    capDrop: f.capDrop.map((c) => checkCap(c, '--cap-drop')),
    ...security,
    entrypoint: f.entrypoint === undefined ? null : f.entrypoint === '' ? [] : [f.entrypoint],
    command: f.command,
    tty: f.tty,
    interactive: f.interactive,
    autoRemove: f.rm,
    ...(cgroup ? { cgroup } : {}),
    ...dockerOptions(f, network, volumes),
    ...(rootless ? { rootless: rootless.rootless } : {}),
  };
}

/** The flags of docker-options.ts, each only when given (container.json stays as small as before). */
function dockerOptions(f: RunFlags, network: NetworkMode, volumes: readonly Volume[]): Partial<ContainerOptions> {
  const o: Partial<ContainerOptions> = {};
  if (f.privileged) o.privileged = true;
  if (f.devices.length > 0) o.devices = f.devices.map(parseDevice);
  if (f.groupAdd.length > 0) o.groupAdd = f.groupAdd.map(parseGroupAdd);
  if (f.ulimits.length > 0) {
    const byType = new Map(f.ulimits.map(parseUlimit).map((u) => [u.type, u])); // the last of a name counts
    o.ulimits = [...byType.values()];
  }
  if (f.sysctls.length > 0) o.sysctls = Object.fromEntries(f.sysctls.map((s) => parseSysctl(s, network)));
  if (f.tmpfs.length > 0) {
    o.tmpfs = f.tmpfs.map(parseTmpfs);
    const taken = new Set(volumes.map((v) => v.destination));
    for (const t of o.tmpfs) {
      if (taken.has(t.destination)) throw new PocError(`duplicate mount point: ${t.destination} is given twice (-v, --mount, --tmpfs)`);
      taken.add(t.destination);
    }
  }
  if (f.shmSize !== undefined) o.shmSize = parseShmSize(f.shmSize);
  if (f.init) o.init = true;
  if (f.stopSignal !== undefined) o.stopSignal = parseStopSignal(f.stopSignal);
  if (f.stopTimeout !== undefined) o.stopTimeout = parseStopTimeout(f.stopTimeout);
  if (f.labels.length > 0) o.labels = parseLabels(f.labels);
  return o;
}
