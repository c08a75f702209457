import { basename, isAbsolute, resolve as resolvePath, posix } from 'node:path';
import type { Spec, Mount } from '../spec/generated/config.js';
import { ConfigFieldError, PocrunError, UserError } from '../errors.js';
import { CAPABILITY_SETS, capabilityMask } from './capabilities.js';
import { capabilityNumber } from '../vocabulary/capabilities.js';
import { DEFAULT_DEVICES, DEV_SYMLINKS, deviceFilterStep, deviceSteps, type DeviceNode } from './devices.js';
import { MS, parseMountOptions, propagationFlags } from './mount-options.js';
import { JOIN_ORDER, idMapText, namespaceName } from './namespaces.js';
import { rlimitNumber, rlimitValue } from './rlimits.js';
import {
  checkMountLabel, ioPriorityStep, memoryPolicyStep, personalityStep, schedulerStep,
  securityLabelSteps, timeOffsetSteps, type HostFacts, type HostSecurity,
} from './process-attrs.js';
import { checkSysctl } from '../vocabulary/sysctls.js';
import { seccompSteps } from './seccomp.js';
import { netDeviceMoves, type NetDeviceMove } from './netdevices.js';
import type { Step } from './wire.js';

/** A cgroup v1 hierarchy as the container sees it under /sys/fs/cgroup. */
export interface CgroupMount {
  /** Directory name under /sys/fs/cgroup, e.g. "cpu,cpuacct" or "memory". */
  name: string;
  /** The hierarchy's mount data ("cpu,cpuacct", "name=systemd"); unused for v2. */
  controllers: string;
  /** The container's cgroup directory on the host (bound when there is no cgroup namespace). */
  hostPath: string;
  /** Links to make beside it ("cpu" and "cpuacct" for "cpu,cpuacct"). */
  links: string[];
}

export interface CreatePlanOptions {
  bundle: string;
  stateDir: string;
  noPivot: boolean;
  /** --no-new-keyring: keep the caller's session keyring instead of one of the container's own. */
  noNewKeyring?: boolean;
  consoleSocket?: string;
  preserveFds: number;
  /** The cgroup.procs files the helper writes its pid to before clone. */
  cgroupProcsFiles: string[];
  /** v1: one entry per hierarchy; v2: one entry with name "". */
  cgroupMounts: CgroupMount[];
  cgroupVersion: 1 | 2;
  /** `detach` for create, `wait` for run in the foreground. */
  mode: 'detach' | 'wait';
  /** cgroup v2's device filter, which the helper attaches in its parent stage (`device-filter` step). */
  deviceFilter?: { dir: string; insns: Uint8Array };
  /** What the plan needs to know about the host: given, never probed here. */
  host: HostFacts;
  /** Whether the rootfs is the runtime's own "/" (without a mount namespace, mounts would cover the host's). */
  rootfsIsHostRoot?: boolean;
  /** --rootless: cgroup v2 is bound into the container, not mounted (see cgroupMountSteps). */
  runtimeRootless?: boolean;
  /**
   * The helper makes the user namespace before its re-exec (`--new-userns`; userNamespaceFirst in namespaces.ts):
   * `clone` then makes the others, and the parent stage's ids are the namespace's.
   */
  userNamespaceFirst?: boolean;
}

export interface CreatePlan {
  steps: Step[];
  rootfs: string;
  /** Whether the runtime must answer `sync maps` by writing uid/gid maps. */
  newUserNamespace: boolean;
  /** Whether the runtime must answer `sync hooks` (prestart and createRuntime hooks, state for the helper). */
  syncHooks: boolean;
  /** Host network devices the runtime moves into the container at `sync netdevices`. */
  netDevices: NetDeviceMove[];
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * config.json → the steps pocrun-init executes (PROTOCOL.md). Pure: every decision about the container is made
 * here, where it is tested without root; the helper only carries the steps out. Throws PocrunError naming the
 * config field for anything that cannot be honoured. The steps come in the helper's order: the parent stage
 * (host paths, namespaces joined, clone), then the init's: its root, mounts, /dev, hooks, pivot_root, the
 * container's settings, and the process.
 */
export function compileCreatePlan(spec: Spec, opts: CreatePlanOptions): CreatePlan {
  const linux = spec.linux ?? {};
  const process = checkProcess(spec);
  const rootfs = isAbsolute(spec.root!.path) ? spec.root!.path : resolvePath(opts.bundle, spec.root!.path);
  const ns = namespacesOf(linux);
  const netDevices = checkNamespaceNeeds(spec, ns, opts);
  const inUserNamespace = ns.seen.has('user');
  const ownMountNamespace = ns.seen.has('mnt');

  // Id-mapped mounts are prepared in the parent stage (a detached tree and a user namespace made in the host's),
  // and attached where they belong in the child's: see mountSteps.
  const mounts = spec.mounts ?? [];
  const idmapTrees: Step[] = [];
  const mountChildSteps = mounts.flatMap((m, i) => mountSteps(m, `/mounts/${i}`, opts, ns.seen.has('cgroup'), { idmapTrees, linux, inUserNamespace }));
  const seccomp = linux.seccomp ? seccompSteps(linux.seccomp, spec.ociVersion) : undefined;
  const root = { uid: hostId(linux.uidMappings, 0), gid: hostId(linux.gidMappings, 0) };
  const steps = parentStageSteps(spec, opts, ns, { seccomp, idmapTrees, root });

  // The container's init, before pivot_root.
  const child: Step[] = [];
  if (ns.fresh.includes('user') && !opts.userNamespaceFirst) child.push(['sync', 'maps']);
  if (netDevices.length) child.push(['sync', 'netdevices']);
  child.push(['setsid']);
  const { steps: rootSteps, propagation: rootPropagation } = rootfsSteps(linux, rootfs, ownMountNamespace);
  child.push(...rootSteps);
  child.push(...mountChildSteps);
  child.push(...devSteps(linux, mounts, ownMountNamespace, inUserNamespace || opts.host.runtimeInUserNamespace, opts.host.hasKcore, root));
  const hooks = hookSteps(spec, Boolean(seccomp?.notify));
  child.push(...hooks.steps);
  child.push(!ownMountNamespace ? ['chroot-only', '/root/path'] : opts.noPivot ? ['chroot', '/root/path'] : ['pivot-root', '/root/path']);
  if (rootPropagation !== undefined) child.push(['propagation', '/', String(rootPropagation), '/linux/rootfsPropagation']);
  if (process.terminal) child.push(consoleStep(process));

  // Inside the container's root: its settings, then the process.
  child.push(...settingSteps(spec, opts, ns));
  checkMountLabel(spec, opts.host.security);
  child.push(...processSteps(spec, opts.preserveFds, false, opts.host.security));

  return { steps: [...steps, ...child], rootfs, newUserNamespace: ns.fresh.includes('user'), syncHooks: hooks.syncHooks, netDevices };
}

/** What config.json must say for a container to be made at all. */
function checkProcess(spec: Spec): NonNullable<Spec['process']> {
  const process = spec.process;
  if (!process) throw new ConfigFieldError('/process', 'required to create a container');
  if (!process.args || process.args.length === 0) throw new ConfigFieldError('/process/args', 'must be a non-empty array');
  if (!spec.root?.path) throw new ConfigFieldError('/root/path', 'required');
  if (!process.user) throw new ConfigFieldError('/process/user', 'required on Linux');
  if (!posix.isAbsolute(process.cwd)) throw new ConfigFieldError('/process/cwd', `must be an absolute path, got ${JSON.stringify(process.cwd)}`);
  return process;
}

/** linux.namespaces sorted out: those with a path are joined in the parent stage, the others made by clone. */
interface Namespaces {
  /** Every namespace the container has, new or joined. */
  seen: Set<string>;
  /** The joined ones, in the order they are entered (JOIN_ORDER: user first, mount last). */
  join: [name: string, path: string, ref: string][];
  /** The ones clone makes. */
  fresh: string[];
}

function namespacesOf(linux: NonNullable<Spec['linux']>): Namespaces {
  const seen = new Set<string>();
  const join: Namespaces['join'] = [];
  const fresh: string[] = [];
  (linux.namespaces ?? []).forEach((ns, i) => {
    const ref = `/linux/namespaces/${i}`;
    const name = namespaceName(ns.type, `${ref}/type`);
    if (seen.has(name)) throw new ConfigFieldError(ref, `namespace type "${ns.type}" is listed twice`);
    seen.add(name);
    if (ns.path) join.push([name, ns.path, ref]);
    else fresh.push(name);
  });
  join.sort((a, b) => JOIN_ORDER.indexOf(a[0]) - JOIN_ORDER.indexOf(b[0]));
  return { seen, join, fresh };
}

/** What the config asks that needs a namespace it lacks, or a flag not given; the network devices to move. */
function checkNamespaceNeeds(spec: Spec, ns: Namespaces, opts: CreatePlanOptions): NetDeviceMove[] {
  const linux = spec.linux ?? {};
  // Without a mount namespace of its own the container shares the runtime's (config-linux.md): see
  // checkSharedMountNamespace for what pocrun does then, and why.
  if (!ns.seen.has('mnt')) checkSharedMountNamespace(spec, opts);
  if (!ns.seen.has('user') && (linux.uidMappings?.length || linux.gidMappings?.length)) {
    throw new ConfigFieldError('/linux/uidMappings', 'uid and gid mappings need a user namespace');
  }
  if (ns.fresh.includes('user') && (!linux.uidMappings?.length || !linux.gidMappings?.length)) {
    throw new ConfigFieldError('/linux/uidMappings', 'a new user namespace needs uidMappings and gidMappings');
  }
  if (spec.hostname !== undefined && spec.hostname !== '' && !ns.seen.has('uts')) {
    throw new ConfigFieldError('/hostname', 'setting the hostname needs a UTS namespace');
  }
  if (spec.domainname && !ns.seen.has('uts')) {
    throw new ConfigFieldError('/domainname', 'setting the domainname needs a UTS namespace');
  }
  if (linux.intelRdt) throw new ConfigFieldError('/linux/intelRdt', 'Intel RDT (resctrl) is not supported by pocrun');
  const netDevices = netDeviceMoves(linux.netDevices, ns.seen.has('net'));
  if (spec.process!.terminal && !opts.consoleSocket) {
    throw new ConfigFieldError('/process/terminal', 'a terminal needs --console-socket');
  }
  return netDevices;
}

/**
 * The parent stage, up to clone: what needs the host's paths and the runtime's namespaces (the seccomp agent's
 * socket, the cgroup, the device filter, exec.fifo, the console socket, id-mapped trees), then the joins.
 */
function parentStageSteps(
  spec: Spec,
  opts: CreatePlanOptions,
  ns: Namespaces,
  c: { seccomp: ReturnType<typeof seccompSteps> | undefined; idmapTrees: Step[]; root: { uid: number; gid: number } },
): Step[] {
  const process = spec.process!;
  const linux = spec.linux ?? {};
  const steps: Step[] = [];
  // Before any setns: in a new or joined user namespace the init could not lower it (that needs
  // CAP_SYS_RESOURCE in the initial user namespace); the child inherits it.
  if (process.oomScoreAdj !== undefined) steps.push(['oom-score-adj', String(process.oomScoreAdj), '/process/oomScoreAdj']);
  // The seccomp agent's socket is a host path: connected before any namespace is joined.
  if (c.seccomp) steps.push(...c.seccomp.listener);
  // Host paths first, while the helper is still in the runtime's namespaces (after joining a user namespace it
  // is that namespace's root, which may not create or chown the fifo in the state directory).
  for (const file of opts.cgroupProcsFiles) steps.push(['cgroup-join', file, '/linux/cgroupsPath']);
  if (opts.deviceFilter) steps.push(deviceFilterStep(opts.deviceFilter));
  // The fifo belongs to the container's root: as the host sees it, or as the helper does in the namespace.
  const [fifoUid, fifoGid] = opts.userNamespaceFirst ? [0, 0] : [c.root.uid, c.root.gid];
  steps.push(['exec-fifo', opts.stateDir, String(fifoUid), String(fifoGid)]);
  if (process.terminal) steps.push(['console-connect', opts.consoleSocket!, '/process/terminal']);
  steps.push(...c.idmapTrees);
  for (const [name, path, ref] of ns.join) steps.push(['setns', path, name, ref]);
  steps.push(...timeOffsetSteps(linux, ns.fresh.includes('time') ? 'new' : ns.seen.has('time') ? 'joined' : 'none'));
  if (opts.userNamespaceFirst && (!ns.fresh.includes('user') || ns.join.length)) {
    throw new PocrunError('internal: userNamespaceFirst needs a new user namespace and no joined namespace');
  }
  steps.push(['clone', opts.mode, ...(opts.userNamespaceFirst ? ns.fresh.filter((n) => n !== 'user') : ns.fresh)]);
  return steps;
}

/** The init's root: its own mount namespace made a slave (or private) view first, or the rootfs opened to chroot. */
function rootfsSteps(linux: NonNullable<Spec['linux']>, rootfs: string, ownMountNamespace: boolean): { steps: Step[]; propagation: number | undefined } {
  const propagation = linux.rootfsPropagation ? propagationFlags(linux.rootfsPropagation) : undefined;
  if (linux.rootfsPropagation && propagation === undefined) {
    throw new ConfigFieldError('/linux/rootfsPropagation', `unknown propagation ${JSON.stringify(linux.rootfsPropagation)}`);
  }
  if (!ownMountNamespace) return { steps: [['root-open', rootfs, '/root/path']], propagation };
  // Nothing the container mounts may propagate back to the host: start from a slave (or private) view.
  const start = propagation !== undefined && (propagation & MS.PRIVATE) ? MS.PRIVATE : MS.SLAVE;
  return { steps: [['propagation', '/', String(start | MS.REC), '/linux/rootfsPropagation'], ['rootfs', rootfs, '/root/path']], propagation };
}

/**
 * /dev: the default devices and linux.devices (made, or bound from the host's where mknod is refused), its links.
 * Not on a /dev bound from elsewhere; without a mount namespace, only on a /dev the config mounts (a tmpfs of
 * the container's own): otherwise the nodes and links would be made in the bundle's or, with the host's root, in
 * the host's /dev.
 */
function devSteps(
  linux: NonNullable<Spec['linux']>,
  mounts: readonly Mount[],
  ownMountNamespace: boolean,
  bindDevices: boolean,
  hasKcore: boolean,
  root: { uid: number; gid: number },
): Step[] {
  const devBound = mounts.some((m) => posix.normalize(m.destination) === '/dev' && isBind(m));
  const devOfItsOwn = ownMountNamespace || mounts.some((m) => posix.normalize(m.destination) === '/dev');
  if (devBound || !devOfItsOwn) return [];
  const devices: DeviceNode[] = DEFAULT_DEVICES.map((d) => ({ ...d, uid: root.uid, gid: root.gid }));
  const custom = (linux.devices ?? []).map((d, i) => {
    const ref = `/linux/devices/${i}`;
    if (!posix.isAbsolute(d.path) || !posix.normalize(d.path).startsWith('/dev/')) {
      throw new ConfigFieldError(`${ref}/path`, `device path must be under /dev, got ${JSON.stringify(d.path)}`);
    }
    if (d.type !== 'p' && (d.major === undefined || d.minor === undefined)) {
      throw new ConfigFieldError(ref, `major and minor are required for device type "${d.type}"`);
    }
    return {
      path: posix.normalize(d.path), type: d.type, major: d.major ?? 0, minor: d.minor ?? 0,
      fileMode: d.fileMode ?? 0o666, uid: d.uid ?? root.uid, gid: d.gid ?? root.gid,
    };
  });
  const customPaths = new Set(custom.map((d) => d.path));
  const defaults = devices.filter((d) => !customPaths.has(d.path));
  const steps: Step[] = [
    ...deviceSteps(defaults, bindDevices, (i) => `default device ${defaults[i]!.path}`),
    ...deviceSteps(custom, bindDevices, (i) => `/linux/devices/${i}`),
  ];
  for (const [target, link] of DEV_SYMLINKS) steps.push(['symlink', target, link, '/dev']);
  if (hasKcore) steps.push(['symlink', '/proc/kcore', '/dev/core', '/dev']);
  return steps;
}

/**
 * `sync hooks` when the runtime has hooks to run or state to give (a seccomp agent gets the container state,
 * which the helper has from the reply), then the hooks the helper runs itself; createContainer's run here.
 */
function hookSteps(spec: Spec, seccompNotify: boolean): { steps: Step[]; syncHooks: boolean } {
  const hooks = spec.hooks ?? {};
  const steps: Step[] = [];
  const syncHooks = Boolean(
    hooks.prestart?.length || hooks.createRuntime?.length || hooks.createContainer?.length || hooks.startContainer?.length ||
      seccompNotify,
  );
  if (syncHooks) steps.push(['sync', 'hooks']);
  for (const phase of ['createContainer', 'startContainer'] as const) {
    (hooks[phase] ?? []).forEach((h, i) => {
      const ref = `/hooks/${phase}/${i}`;
      if (!posix.isAbsolute(h.path)) throw new ConfigFieldError(`${ref}/path`, `must be absolute, got ${JSON.stringify(h.path)}`);
      const args = h.args ?? [h.path];
      const env = h.env ?? [];
      steps.push(['hook', phase, String(h.timeout ?? 0), h.path, String(args.length), ...args, String(env.length), ...env, ref]);
    });
  }
  if (hooks.createContainer?.length) steps.push(['run-hooks', 'createContainer']);
  return { steps, syncHooks };
}

/**
 * The container's settings, once inside its root: lo, sysctls, masked and read-only paths, a read-only root, the
 * session keyring, hostname and domainname, rlimits.
 */
function settingSteps(spec: Spec, opts: CreatePlanOptions, ns: Namespaces): Step[] {
  const linux = spec.linux ?? {};
  const steps: Step[] = [];
  const joinPaths = new Map(ns.join.map(([name, path]) => [name, path]));
  const sysctlContext = {
    has: (name: string) => ns.seen.has(name),
    joinPath: (name: string) => joinPaths.get(name),
    isHostNamespace: opts.host.isHostNamespace,
    hostnameSet: Boolean(spec.hostname),
  };
  // A new network namespace: its lo is brought up, as runc and crun do (engines count on it for --network none).
  if (ns.fresh.includes('net')) steps.push(['loopback', '/linux/namespaces']);
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) {
    checkSysctl(key, sysctlContext);
    steps.push(['sysctl', key, value, `/linux/sysctl/${key}`]);
  }
  // After the sysctls, as runc: /proc/sys is among the read-only paths.
  (linux.maskedPaths ?? []).forEach((p, i) => steps.push(['mask', checkedPath(p, `/linux/maskedPaths/${i}`), `/linux/maskedPaths/${i}`]));
  (linux.readonlyPaths ?? []).forEach((p, i) =>
    steps.push(['readonly', checkedPath(p, `/linux/readonlyPaths/${i}`), `/linux/readonlyPaths/${i}`]),
  );
  if (spec.root!.readonly) steps.push(['remount-root', String(MS.RDONLY), '/root/readonly']);
  if (!opts.noNewKeyring) steps.push(['session-keyring', `_ses.${basename(opts.stateDir)}`, '-']);
  if (spec.hostname !== undefined && ns.seen.has('uts') && ns.fresh.includes('uts')) steps.push(['hostname', spec.hostname, '/hostname']);
  if (spec.domainname && ns.fresh.includes('uts')) steps.push(['domainname', spec.domainname, '/domainname']);
  (spec.process!.rlimits ?? []).forEach((r, i) => {
    const ref = `/process/rlimits/${i}`;
    steps.push(['rlimit', String(rlimitNumber(r.type, `${ref}/type`)), rlimitValue(r.soft), rlimitValue(r.hard), ref]);
  });
  return steps;
}

/** `console [height width] ref`: the pty, at process.consoleSize when the config gives one. */
export function consoleStep(process: NonNullable<Spec['process']>): Step {
  const size = process.consoleSize;
  return size ? ['console', String(size.height), String(size.width), '/process/consoleSize'] : ['console', '/process/terminal'];
}

/**
 * The part of the plan shared by create and exec: credentials, environment, the executable, start. For exec
 * (`forExec`) there is no exec.fifo to wait on and no startContainer hook: the process runs once it is ready.
 */
export function processSteps(spec: Spec, preserveFds: number, forExec: boolean, hostSecurity: () => HostSecurity): Step[] {
  const process = spec.process!;
  const user = process.user!;
  const steps: Step[] = [];
  steps.push(['chdir', process.cwd, '/process/cwd']);
  if (user.umask !== undefined) steps.push(['umask', user.umask.toString(8), '/process/user/umask']);
  // Before the user switch and the capability drop: a negative nice, a realtime policy or the RT I/O class need
  // the runtime's privileges (CAP_SYS_NICE, CAP_SYS_ADMIN), which the container need not keep.
  if (process.scheduler) steps.push(schedulerStep(process.scheduler));
  if (process.ioPriority) steps.push(ioPriorityStep(process.ioPriority));
  steps.push(...securityLabelSteps(spec, hostSecurity));
  const caps = process.capabilities ?? {};
  const masks = CAPABILITY_SETS.map((set) => BigInt(`0x${capabilityMask(caps[set], `/process/capabilities/${set}`)}`));
  // The kernel raises an ambient capability only if it is permitted and inheritable. runc's default spec lists
  // ambient capabilities without inheritable ones; like runc, the ones the kernel would refuse are left out.
  const [, , permitted, inheritable] = masks;
  masks[4] = masks[4]! & permitted! & inheritable!;
  steps.push(['keep-caps']);
  steps.push(['groups', ...(user.additionalGids ?? []).map(String)]);
  steps.push(['user', String(user.uid), String(user.gid), '/process/user']);
  // Loading a seccomp filter without no_new_privs needs CAP_SYS_ADMIN, and the filter is loaded last, after
  // the capabilities are set: so then the caps step keeps CAP_SYS_ADMIN (effective and permitted), and the
  // load step drops it right after loading, with one capset (the only syscall between the two besides sending
  // a notify fd). Loading first instead would run the runtime's own steps (exec.fifo, startContainer hooks,
  // capset, setuid) under the container's filter.
  const seccomp = spec.linux?.seccomp;
  const SYS_ADMIN = 1n << BigInt(capabilityNumber('CAP_SYS_ADMIN')!);
  const keepSysAdmin = Boolean(seccomp) && !process.noNewPrivileges && !(masks[1]! & SYS_ADMIN);
  const finalCaps = keepSysAdmin ? { effective: masks[1]!, permitted: masks[2]!, inheritable: masks[3]! } : undefined;
  const capsNow = keepSysAdmin ? masks.map((m, i) => (i === 1 || i === 2 ? m | SYS_ADMIN : m)) : masks;
  const [b, e, p, i, a] = capsNow.map((m) => m.toString(16)) as [string, string, string, string, string];
  steps.push(['caps', b, e, p, i, a, '/process/capabilities']);
  if (process.noNewPrivileges) steps.push(['no-new-privs', '/process/noNewPrivileges']);
  if (spec.linux?.personality) steps.push(personalityStep(spec.linux.personality));
  if (spec.linux?.memoryPolicy) steps.push(memoryPolicyStep(spec.linux.memoryPolicy));
  const filter = seccomp ? seccompSteps(seccomp, spec.ociVersion, finalCaps) : undefined;
  if (filter) steps.push(...filter.build);
  const env = process.env ?? [];
  for (const kv of env) steps.push(['env', kv]);
  if (!env.some((kv) => kv.startsWith('PATH='))) steps.push(['env', `PATH=${DEFAULT_PATH}`]);
  steps.push(['exec', String(process.args!.length), ...process.args!, '/process/args']);
  steps.push(['created']);
  if (!forExec) {
    steps.push(['wait-start']);
    if (spec.hooks?.startContainer?.length) steps.push(['run-hooks', 'startContainer']);
  }
  steps.push(['close-fds', String(3 + preserveFds)]);
  if (filter) steps.push(filter.load);
  steps.push(['execve']);
  return steps;
}

interface IdmapContext {
  /** The parent stage's `idmap-tree` steps; a mount refers to its tree by index. */
  idmapTrees: Step[];
  linux: NonNullable<Spec['linux']>;
  inUserNamespace: boolean;
}

function mountSteps(m: Mount, ref: string, opts: CreatePlanOptions, cgroupNamespace: boolean, idmap: IdmapContext): Step[] {
  const dest = m.destination;
  if (!posix.isAbsolute(dest)) {
    throw new ConfigFieldError(`${ref}/destination`, `must be an absolute path, got ${JSON.stringify(dest)}`);
  }
  if (dest.split('/').includes('..')) {
    throw new ConfigFieldError(`${ref}/destination`, `must not contain "..", got ${JSON.stringify(dest)}`);
  }
  const target = posix.normalize(dest);
  let parsed;
  try {
    parsed = parseMountOptions(m.options);
  } catch (err) {
    throw err instanceof UserError ? err.wrap(`config.json ${ref}/options`) : err;
  }
  const bind = isBind(m);
  const type = bind ? 'bind' : (m.type ?? '');
  if (!bind && !type) throw new ConfigFieldError(`${ref}/type`, 'required for a mount that is not a bind mount');
  if (!bind && !KNOWN_FILESYSTEMS.has(type)) {
    throw new ConfigFieldError(`${ref}/type`, `unknown filesystem type ${JSON.stringify(type)}`);
  }
  const steps: Step[] = [];
  if (type === 'cgroup' || type === 'cgroup2') return cgroupMountSteps(target, parsed.flags, ref, opts, cgroupNamespace);

  let source = m.source ?? '';
  let flags = parsed.flags;
  if (bind) {
    if (!source) throw new ConfigFieldError(`${ref}/source`, 'a bind mount needs a source');
    source = posix.isAbsolute(source) ? source : resolvePath(opts.bundle, source);
    flags |= MS.BIND;
  }
  if (parsed.copyUp && type !== 'tmpfs') throw new ConfigFieldError(`${ref}/options`, 'tmpcopyup is only for tmpfs mounts');
  const kind = bind ? 'auto' : parsed.copyUp ? 'copyup' : 'dir';
  if (parsed.idmap || m.uidMappings || m.gidMappings) {
    if (!bind) throw new ConfigFieldError(`${ref}/options`, 'an id-mapped mount must be a bind mount');
    const [uidMap, gidMap] = idmappedMappings(m, ref, idmap);
    const index = idmap.idmapTrees.length;
    const recursive = (flags & MS.REC) !== 0;
    idmap.idmapTrees.push(['idmap-tree', source, recursive ? '1' : '0', parsed.idmap === 'ridmap' ? '1' : '0', uidMap, gidMap, ref]);
    steps.push(['move-tree', String(index), target, String(flags), ref]);
  } else {
    steps.push(['mount', source || type, target, bind ? '' : type, String(flags), parsed.data, kind, ref]);
  }
  if (parsed.attrSet || parsed.attrClear) steps.push(['setattr', target, String(parsed.attrSet), String(parsed.attrClear), ref]);
  for (const p of parsed.propagation) steps.push(['propagation', target, String(p), ref]);
  return steps;
}

/**
 * A container without a mount namespace of its own runs in the runtime's: as runc runs it (chroot into the
 * rootfs, the config's mounts made under the rootfs, which `delete` unmounts: runc leaves them behind), but what
 * would change the host's own mounts is refused with the reason, where runc does it silently. runc makes the
 * runtime's "/" rslave and the rootfs's parent mount private (pocrun changes no propagation), ignores
 * root.readonly (refused: it would remount the host's filesystem), and refuses masked and read-only paths
 * ("unable to restrict sys entries without a private MNT namespace"), as pocrun does.
 */
function checkSharedMountNamespace(spec: Spec, opts: CreatePlanOptions): void {
  const need = 'needs a mount namespace (linux.namespaces has no "mount": the container shares the runtime\'s)';
  const linux = spec.linux ?? {};
  if (linux.maskedPaths?.length) throw new ConfigFieldError('/linux/maskedPaths', `masking paths ${need}`);
  if (linux.readonlyPaths?.length) throw new ConfigFieldError('/linux/readonlyPaths', `read-only paths ${need}`);
  if (spec.root?.readonly) throw new ConfigFieldError('/root/readonly', `a read-only root ${need}; it would remount the host's filesystem`);
  if (linux.rootfsPropagation) throw new ConfigFieldError('/linux/rootfsPropagation', `${need}; it would change the host's mounts`);
  if (opts.rootfsIsHostRoot && spec.mounts?.length) {
    throw new ConfigFieldError('/mounts/0', `the rootfs is the host's own root, so without a mount namespace every mount would cover the host's own directories`);
  }
  const dev = (spec.mounts ?? []).some((m) => posix.normalize(m.destination) === '/dev');
  if (linux.devices?.length && !dev) {
    throw new ConfigFieldError('/linux/devices', `device nodes ${need} or a /dev mount of the container's own; they would be made in the rootfs's own /dev`);
  }
}

/**
 * A "cgroup" mount: with a cgroup namespace each v1 hierarchy is mounted fresh (it shows the container's
 * cgroup as its root); without one the container's own cgroup directories are bound from the host.
 */
/**
 * An id-mapped mount's uid_map and gid_map: its own mappings, both or neither (config.md); without them the
 * container's user namespace mappings, and without a user namespace an error, as the spec asks.
 */
function idmappedMappings(m: Mount, ref: string, idmap: IdmapContext): [string, string] {
  if (!m.uidMappings !== !m.gidMappings) {
    throw new ConfigFieldError(ref, 'uidMappings and gidMappings go together (one is missing)');
  }
  if (m.uidMappings?.length && m.gidMappings?.length) return [idMapText(m.uidMappings), idMapText(m.gidMappings)];
  if (idmap.inUserNamespace && idmap.linux.uidMappings?.length && idmap.linux.gidMappings?.length) {
    return [idMapText(idmap.linux.uidMappings), idMapText(idmap.linux.gidMappings)];
  }
  throw new ConfigFieldError(ref, `an id-mapped mount needs uidMappings and gidMappings, or the container's user namespace mappings`);
}

function cgroupMountSteps(target: string, flags: number, ref: string, opts: CreatePlanOptions, cgroupNamespace: boolean): Step[] {
  const mountFlags = flags | MS.NOSUID | MS.NODEV | MS.NOEXEC;
  if (opts.cgroupVersion === 2) {
    const m = opts.cgroupMounts[0];
    // In a user namespace the runtime's cgroup2 mount is refused (EBUSY or EPERM, without a cgroup of the
    // user's own at the namespace's root): runc falls back to binding the cgroup's directory, which a rootless
    // pocrun does from the start.
    return (cgroupNamespace && !opts.runtimeRootless) || !m
      ? [['mount', 'cgroup2', target, 'cgroup2', String(mountFlags), '', 'dir', ref]]
      : [['mount', m.hostPath, target, '', String(mountFlags | MS.BIND | MS.REC), '', 'dir', ref]];
  }
  const steps: Step[] = [['mount', 'tmpfs', target, 'tmpfs', String(MS.NOSUID | MS.NODEV | MS.NOEXEC), 'mode=755', 'dir', ref]];
  for (const h of opts.cgroupMounts) {
    const dest = posix.join(target, h.name);
    steps.push(
      cgroupNamespace
        ? ['mount', 'cgroup', dest, 'cgroup', String(mountFlags), h.controllers, 'dir', ref]
        : ['mount', h.hostPath, dest, '', String(mountFlags | MS.BIND), '', 'dir', ref],
    );
    for (const link of h.links) steps.push(['symlink', h.name, posix.join(target, link), ref]);
  }
  if (flags & MS.RDONLY) steps.push(['remount', target, String(MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC), ref]);
  return steps;
}

function isBind(m: Mount): boolean {
  return m.type === 'bind' || Boolean(m.options?.some((o) => o === 'bind' || o === 'rbind'));
}

function checkedPath(path: string, ref: string): string {
  if (!posix.isAbsolute(path)) throw new ConfigFieldError(ref, `must be an absolute path, got ${JSON.stringify(path)}`);
  return posix.normalize(path);
}

/** The container uid that maps to `id` inside a user namespace, as the host sees it. */
function hostId(mappings: { containerID: number; hostID: number; size: number }[] | undefined, id: number): number {
  if (!mappings?.length) return id;
  const m = mappings.find((m) => id >= m.containerID && id < m.containerID + m.size);
  return m ? m.hostID + (id - m.containerID) : 65534;
}

/** Filesystem types a container may mount; anything else is a typo or needs a driver we do not load. */
const KNOWN_FILESYSTEMS = new Set([
  'proc', 'sysfs', 'tmpfs', 'devpts', 'mqueue', 'cgroup', 'cgroup2', 'overlay', 'ramfs', 'securityfs',
  'debugfs', 'tracefs', 'fusectl', 'binfmt_misc', 'configfs', 'hugetlbfs', 'pstore', 'bpf', 'efivarfs',
  'ext4', 'ext3', 'ext2', 'xfs', 'btrfs', 'vfat', 'fuse', 'squashfs', 'iso9660', 'nfs', 'nfs4',
]);
