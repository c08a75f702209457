/**
 * An image and a container's options → the OCI config.json pocrun runs (pure, table-tested). What it adds to
 * the image: docker's default capabilities, the container's /etc files bound over the image's, volumes, limits,
 * the cgroup /poc/<id>, and the network hooks that call back into poc.
 */
import { cgroupsPathOf } from './cgroup.js';
import type { Hook, Mount, Spec } from '../../spec/generated/config.js';
import { OCI_VERSION, defaultSpec } from '../../spec/default.js';
import { PocError } from '../errors.js';
import { CAPABILITIES } from '../../vocabulary/capabilities.js';
import type { ImageConfig } from '../images/image-store.js';
import { mergeEnv, type ContainerOptions } from './options.js';
import { seccompFromProfile } from './seccomp-profile.js';
import { tmpfsOptions, volumeType, type Volume } from '../volumes/spec.js';
import { defaultSeccompProfile } from './default-seccomp.js';
import type { DeviceNode } from '../../vocabulary/device-node.js';

/** Docker's default set: enough for ordinary programs (ping needs NET_RAW), nothing that reaches the host. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export const CPU_PERIOD = 100_000;
/** The container a network hook is for (config.json's annotations). */
export const CONTAINER_ID_ANNOTATION = 'io.poc.container.id';
export const NAME_ANNOTATION = 'io.poc.container.name';
export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ProcessUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

function parseIdFile(text: string): PasswdEntry[] {
  return text
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 3 && /^\d+$/.test(f[2]!))
    .map((f) => ({ name: f[0]!, uid: Number(f[2]), gid: f[3] && /^\d+$/.test(f[3]) ? Number(f[3]) : Number(f[2]) }));
}

/**
 * `-u` (or the image's User): `UID`, `NAME`, `UID:GID`, `NAME:GROUP`, looked up in the image's /etc/passwd and
 * /etc/group. A numeric uid not in passwd runs with gid 0, as with docker; an unknown name is an error, in
 * docker's words (moby/sys/user's GetExecUser).
 */
export function resolveUser(spec: string, passwd: string, group: string): ProcessUser {
  if (spec === '') return { uid: 0, gid: 0 };
  const [u, g] = spec.split(':') as [string, string?];
  const users = parseIdFile(passwd);
  let uid: number;
  let gid = 0;
  if (/^\d+$/.test(u)) {
    uid = Number(u);
    const entry = users.find((e) => e.uid === uid);
    if (entry) gid = entry.gid;
  } else {
    const entry = users.find((e) => e.name === u);
    if (!entry) throw new PocError(`unable to find user ${u}: no matching entries in passwd file`);
    uid = entry.uid;
    gid = entry.gid;
  }
  if (g !== undefined && g !== '') {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      // group file: name:x:gid:members, so the "uid" field of the parse is the gid
      const entry = parseIdFile(group).find((e) => e.name === g);
      if (!entry) throw new PocError(`unable to find group ${g}: no matching entries in group file`);
      gid = entry.uid;
    }
  }
  if (uid > 0xfffffffe || gid > 0xfffffffe) throw new PocError(`user ${JSON.stringify(spec)}: id out of range`);
  return { uid, gid };
}

/**
 * `--group-add`: names from the image's /etc/group, gids as they are; an unknown name is an error, as with
 * docker.
 */
export function resolveGroups(groups: readonly string[], group: string): number[] {
  const entries = parseIdFile(group); // name:x:gid:members, so the "uid" field of the parse is the gid
  return groups.map((g) => {
    if (/^\d+$/.test(g)) return Number(g);
    const entry = entries.find((e) => e.name === g);
    if (!entry) throw new PocError(`--group-add ${g}: no such group in the image's /etc/group`);
    return entry.uid;
  });
}

/**
 * The effective capability set from docker's defaults and --cap-add / --cap-drop (names checked earlier). ALL
 * is every capability `available` (poc's own bounding set: a process cannot be given one it lacks).
 */
export function capabilitySet(add: string[], drop: string[], available: readonly string[] = CAPABILITIES): string[] {
  let caps = new Set<string>(add.includes('ALL') ? available : DEFAULT_CAPABILITIES);
  for (const c of add) if (c !== 'ALL') caps.add(c);
  if (drop.includes('ALL')) caps = new Set(add.filter((c) => c !== 'ALL'));
  else for (const c of drop) caps.delete(c);
  return CAPABILITIES.filter((c) => caps.has(c));
}

/** The argv a container runs: docker's rules for ENTRYPOINT, CMD and their overrides. */
export function containerArgs(image: Pick<ImageConfig, 'Entrypoint' | 'Cmd'>, opts: Pick<ContainerOptions, 'entrypoint' | 'command'>): string[] {
  const entrypoint = opts.entrypoint ?? image.Entrypoint ?? [];
  // --entrypoint resets the image's CMD, as docker does.
  const cmd = opts.command.length > 0 ? opts.command : opts.entrypoint !== null ? [] : (image.Cmd ?? []);
  const args = [...entrypoint, ...cmd];
  if (args.length === 0) throw new PocError('no command given and the image has neither an entrypoint nor a command');
  return args;
}

export interface BundleContext {
  containerId: string;
  name: string;
  hostname: string;
  /** Absolute path of the rootfs (the overlay mount point). */
  rootfs: string;
  /** Directory holding hosts, hostname and resolv.conf. */
  etcDir: string;
  user: ProcessUser;
  /** The poc binary and environment for the network hooks (createRuntime / poststop). */
  hook: { path: string; env: string[] };
  /** This machine, for a Docker seccomp profile's arches and minKernel: Go's arch name and the kernel release. */
  arch: string;
  kernel: string;
  /** Where a named volume's content is on the host. */
  volumePath: (name: string) => string;
  /** The device nodes made in the container's /dev: --device's, and with --privileged all of the host's. */
  devices?: (DeviceNode & { access?: string })[];
  /** The capabilities poc holds (its bounding set): what ALL and --privileged give. All there are by default. */
  capabilities?: readonly string[];
  /** --init: the host's reaper binary (catatonit), bound read-only to INIT_PATH. */
  initBinary?: string;
}

/** Where --init's reaper appears in the container: in /dev, a tmpfs poc makes, so even a read-only rootfs takes it. */
export const INIT_PATH = '/dev/init';
/** docker's size of /dev/shm. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** The seccomp profile a container gets: poc's default, a file's, or none (unconfined, --privileged, older records). */
function seccompProfileOf(o: ContainerOptions): unknown {
  if (o.privileged) return undefined;
  return o.seccomp === 'default' ? defaultSeccompProfile() : o.seccompProfile;
}

/**
 * The default mounts adjusted: /dev/shm's size; with --privileged /sys and its cgroup mount writable, as docker
 * makes them.
 */
function baseMounts(mounts: Mount[], o: ContainerOptions): Mount[] {
  return mounts.map((m) => {
    if (m.destination === '/dev/shm') {
      return { ...m, options: [...(m.options ?? []).filter((x) => !x.startsWith('size=')), `size=${o.shmSize ?? DEFAULT_SHM_SIZE}`] };
    }
    if (o.privileged && (m.destination === '/sys' || m.destination === '/sys/fs/cgroup')) {
      return { ...m, options: (m.options ?? []).map((x) => (x === 'ro' ? 'rw' : x)) };
    }
    return m;
  });
}

function bind(source: string, destination: string, readOnly: boolean, propagation = 'rprivate'): Mount {
  return { destination, type: 'bind', source, options: ['rbind', propagation, readOnly ? 'ro' : 'rw'] };
}

/** -v and --mount: a bind of a host path or of a volume's content, or a tmpfs. */
function volumeMount(v: Volume, ctx: BundleContext): Mount {
  const type = volumeType(v);
  if (type === 'tmpfs') return { destination: v.destination, type: 'tmpfs', source: 'tmpfs', options: tmpfsOptions(v) };
  if (type === 'volume') return bind(ctx.volumePath(v.source), v.destination, v.readOnly);
  return bind(v.source, v.destination, v.readOnly, v.propagation);
}

function networkHooks(o: ContainerOptions, ctx: BundleContext): Spec['hooks'] {
  const hook = (action: string): Hook => ({ path: ctx.hook.path, args: ['poc', 'hook', 'network', action], env: ctx.hook.env, timeout: 60 });
  if (o.network === 'bridge') return { createRuntime: [hook('setup')], poststop: [hook('teardown')] };
  // --network none needs no hook: pocrun brings lo up in every network namespace it makes.
  return undefined;
}

/** image config + container options → config.json. */
export function planBundle(image: ImageConfig, o: ContainerOptions, ctx: BundleContext): Spec {
  const base = defaultSpec();
  const caps = capabilitySet(o.privileged ? ['ALL', ...o.capAdd] : o.capAdd, o.capDrop, ctx.capabilities);
  const env = mergeEnv([DEFAULT_PATH], image.Env ?? [], [`HOSTNAME=${ctx.hostname}`], o.tty ? ['TERM=xterm'] : [], o.env);
  // Only root mapped (a user without subordinate ranges): no mount option may name another id.
  const defaults = o.rootless?.singleId
    ? base.mounts!.map((m) => (m.options ? { ...m, options: m.options.filter((x) => !/^[ug]id=/.test(x)) } : m))
    : base.mounts!;
  const mounts: Mount[] = [
    ...baseMounts(defaults, o),
    bind(`${ctx.etcDir}/hosts`, '/etc/hosts', false),
    bind(`${ctx.etcDir}/hostname`, '/etc/hostname', false),
    bind(`${ctx.etcDir}/resolv.conf`, '/etc/resolv.conf', false),
    ...o.volumes.map((v) => volumeMount(v, ctx)),
    ...(o.tmpfs ?? []).map((t): Mount => ({ destination: t.destination, type: 'tmpfs', source: 'tmpfs', options: t.options })),
    ...(ctx.initBinary ? [bind(ctx.initBinary, INIT_PATH, true)] : []),
  ];
  const devices = ctx.devices ?? [];
  const args = containerArgs(image, o);
  const resources: NonNullable<NonNullable<Spec['linux']>['resources']> = { ...base.linux!.resources };
  if (o.resources.memory !== undefined) resources.memory = { limit: o.resources.memory };
  if (o.resources.cpus !== undefined) resources.cpu = { quota: Math.round(o.resources.cpus * CPU_PERIOD), period: CPU_PERIOD };
  if (o.resources.pidsLimit !== undefined) resources.pids = { limit: o.resources.pidsLimit };
  // --privileged: every device; --device: its node with the access asked for (pocrun adds the default devices').
  if (o.privileged) resources.devices = [{ allow: true, access: 'rwm' }];
  else if (devices.length > 0) {
    resources.devices = [
      ...(resources.devices ?? []),
      ...devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: d.access ?? 'rwm' })),
    ];
  }
  const seccomp = seccompProfileOf(o);
  const namespaces = base.linux!.namespaces!.filter((ns) => !(ns.type === 'network' && o.network === 'host'));
  const hooks = networkHooks(o, ctx);
  return {
    ociVersion: OCI_VERSION,
    process: {
      terminal: o.tty,
      user: ctx.user,
      args: ctx.initBinary ? [INIT_PATH, '--', ...args] : args,
      env,
      cwd: o.workdir ?? (image.WorkingDir || '/'),
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: o.noNewPrivileges,
      ...(o.ulimits ? { rlimits: o.ulimits.map((u) => ({ type: u.type as 'RLIMIT_NOFILE', soft: u.soft, hard: u.hard })) } : {}),
    },
    root: { path: ctx.rootfs, readonly: o.readOnly },
    hostname: ctx.hostname,
    mounts,
    ...(hooks ? { hooks } : {}),
    annotations: { [CONTAINER_ID_ANNOTATION]: ctx.containerId, [NAME_ANNOTATION]: ctx.name },
    linux: {
      ...base.linux,
      // Rootless without a delegated cgroup (o.cgroup unset): none of its own; pocrun, root in poc's user
      // namespace, runs it without one as it asks for no resources. With one: a scope of the user's systemd.
      ...(o.rootless && !o.cgroup ? {} : { cgroupsPath: cgroupsPathOf(ctx.containerId, o.cgroup) }),
      resources,
      namespaces,
      ...(devices.length > 0 ? { devices: devices.map(({ access: _a, ...d }) => d) } : {}),
      ...(o.sysctls ? { sysctl: o.sysctls } : {}),
      ...(o.privileged ? { maskedPaths: [], readonlyPaths: [] } : {}),
      ...(seccomp !== undefined ? { seccomp: seccompFromProfile(seccomp, { caps, arch: ctx.arch, kernel: ctx.kernel }) } : {}),
    },
  };
}
