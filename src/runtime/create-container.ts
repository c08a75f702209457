import { existsSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Spec } from '../spec/generated/config.js';
import { loadConfig } from '../spec/validate.js';
import { compileCreatePlan } from '../plan/compile.js';
import { userNamespaceFirst } from '../plan/namespaces.js';
import { encodePlan } from '../plan/wire.js';
import { deviceCgroupRules } from '../plan/devices.js';
import { readOwnCgroup, resolveCgroupPath, type CgroupDriver, type LinuxResources } from '../cgroups/index.js';
import { NoCgroupDriver } from '../cgroups/none.js';
import { containerCgroupMounts } from '../cgroups/container-view.js';
import { systemdUnitFor } from '../cgroups/systemd-unit.js';
import { UserError, PocrunError, wrapError } from '../errors.js';
import { checkId } from './id.js';
import { runHooks } from './hooks.js';
import { HelperSession } from './init-helper.js';
import { killQuietly, readProcStat } from '../common/proc.js';
import { ociState } from './status.js';
import type { ContainerRecord } from './state-store.js';
import type { RuntimeContext } from './context.js';
import { ownMaps, writeIdMaps } from './userns.js';
import { cgroupOutOfReach, euid, firstResourceField, hostEuid, isPermissionError, ownerName } from './rootless.js';
import { moveNetDevices } from './netdevices.js';
import { removeContainer } from './delete.js';
import { sharedMountsBefore } from './shared-mounts.js';
import { trace } from './trace.js';
import { probeHostFacts } from './host-probes.js';
import { releaseSlot, releaseSlotIfPreserved } from './admission.js';

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  noPivot: boolean;
  noNewKeyring?: boolean;
  preserveFds: number;
  /** `wait`: the helper stays the init's parent and exits with its status (pocrun run). */
  mode: 'detach' | 'wait';
}

export interface Created {
  record: ContainerRecord;
  helper: HelperSession;
}

/**
 * pocrun create: validate and plan first, then make the state directory, the cgroup and the helper, run the helper
 * through the sync points, record the state. A config that cannot be planned changes nothing; a failure at any
 * later step undoes every earlier one: no state directory, cgroup, mount or process is left.
 */
export async function createContainer(ctx: RuntimeContext, opts: CreateOptions): Promise<Created> {
  const id = checkId(opts.id);
  const bundle = resolve(opts.bundle);
  if (!existsSync(bundle) || !statSync(bundle).isDirectory()) throw new PocrunError(`bundle ${bundle} is not a directory`);
  trace('create');
  const spec = loadConfig(bundle);
  trace('config loaded and validated');
  const { prestart, createRuntime, createContainer: inContainer } = spec.hooks ?? {};
  if (prestart?.length || createRuntime?.length || inContainer?.length) releaseSlot();
  const rootfs = checkRootfs(spec, bundle);
  if (opts.preserveFds < 0 || !Number.isInteger(opts.preserveFds)) throw new PocrunError('--preserve-fds must be a non-negative integer');

  // --systemd-cgroup: the cgroup is a systemd scope, named from linux.cgroupsPath (slice:prefix:name). Both
  // checks come before anything is made: without systemd, or with a malformed path, nothing is left behind.
  const systemd = ctx.systemdCgroup ? ctx.systemdCgroups() : undefined;
  const unit = systemd ? systemdUnitFor(spec.linux?.cgroupsPath, id, ctx.rootless ? hostEuid() : undefined) : undefined;
  let cgroups: CgroupDriver = systemd ?? ctx.cgroups();
  let cgroupPath = unit ? unit.cgroupPath : resolveCgroupPath(spec.linux?.cgroupsPath, id);
  const record = newRecord(spec, { id, bundle, rootfs, cgroupPath, cgroupDirs: cgroups.dirs(cgroupPath), unit });
  // The rules every container gets, whole; on v2 an eBPF program that the helper attaches before the init is
  // cloned (a step of its plan: no process of its own), on v1 written with the other resources. Rootless, as
  // runc: not enforced (v1's devices.deny and v2's eBPF filter need CAP_SYS_ADMIN on the host; the container
  // cannot make device nodes in its user namespace anyway).
  const devices = deviceCgroupRules(spec.linux?.resources?.devices);
  const deviceFilter = ctx.rootless ? undefined : cgroups.deviceFilter(cgroupPath, devices);
  const newUserNamespace = userNamespaceFirst(spec.linux?.namespaces, euid() === 0);
  const host = probeHostFacts();
  // The plan, from paths computed, not made: whatever it refuses, nothing exists yet.
  const planWith = (driver: CgroupDriver, path: string) => {
    const plan = compileCreatePlan(spec, {
      deviceFilter,
      bundle,
      stateDir: ctx.store.dir(id),
      noPivot: opts.noPivot,
      noNewKeyring: opts.noNewKeyring,
      consoleSocket: opts.consoleSocket && resolve(opts.consoleSocket),
      preserveFds: opts.preserveFds,
      cgroupProcsFiles: [],
      // Without a cgroup of its own the container sees its caller's, as with runc.
      cgroupMounts: containerCgroupMounts(path ? driver : ctx.cgroups(), path || readOwnCgroup()),
      cgroupVersion: driver.version,
      mode: opts.mode,
      host,
      rootfsIsHostRoot: record.sharedMounts?.root === '/',
      runtimeRootless: ctx.rootless,
      userNamespaceFirst: newUserNamespace,
    });
    return { plan, bytes: encodePlan(plan.steps) };
  };
  // Rootless, as runc: where this user may not make the cgroup (cgroup v1, v2 without a delegated subtree) a
  // container that needs none runs without one (in its caller's cgroups), and one that asks for limits fails
  // naming the field. Mostly known before anything is made (mkdir's own check, by access(2)): the plan is then
  // made once, and no mkdir is tried; a refusal the check did not foresee is handled at the mkdir below.
  const withoutCgroup = (err: unknown) => {
    rootlessWithoutCgroup(spec, err);
    ctx.log('debug', `rootless: no cgroup of its own (${(err as Error).message})`);
    cgroups = new NoCgroupDriver(ctx.cgroups, 0);
    cgroupPath = '';
    record.cgroupPath = '';
    record.cgroupDirs = {};
  };
  const outOfReach = ctx.rootless && !systemd ? cgroupOutOfReach(cgroupPath, Object.values(record.cgroupDirs)) : undefined;
  if (outOfReach) withoutCgroup(outOfReach);
  let { plan, bytes: planBytes } = planWith(cgroups, cgroupPath);
  trace('plan compiled');

  ctx.store.makeDir(id);
  let helper: HelperSession | undefined;
  let noScope = false;
  try {
    // Recorded before anything else exists, so that `delete --force` can clean up after a killed create.
    ctx.store.write(record);
    trace('state directory made');
    if (!systemd && cgroupPath) {
      try {
        cgroups.create(cgroupPath);
        trace('cgroup made');
      } catch (err) {
        if (!ctx.rootless || !isPermissionError(err)) throw err;
        // The record then names no cgroup, and later commands go by the pid namespace.
        withoutCgroup(err);
        ctx.store.write(record);
        ({ plan, bytes: planBytes } = planWith(cgroups, cgroupPath));
      }
    }
    // On cgroup v2 the helper's clone3 puts the init straight into the cgroup (CLONE_INTO_CGROUP): no process
    // is moved. Otherwise the helper moves itself into the cgroup first thing: the kernel's wait for a first
    // move (5-25 ms on v1) overlaps with applying the resources here. It reads its plan only after that move,
    // so the plan has no cgroup-join steps. A systemd scope is made with the helper in it (below, systemd moves
    // it), before the helper clones the init.
    // Before the helper exists: the slot's fd must not be among the fds it passes on.
    releaseSlotIfPreserved(opts.preserveFds);
    const into = systemd ? undefined : cloneIntoCgroup(cgroups, cgroupPath, spec);
    helper = HelperSession.spawn({
      preserveFds: opts.preserveFds,
      newUserNamespace,
      // The maps the helper may write itself (each only the user's own id): no round trip at `sync maps`.
      ownMaps: newUserNamespace ? ownMaps(spec) : undefined,
      ownProcessGroup: opts.mode === 'wait',
      ...(into ? { cloneIntoCgroup: into } : { cgroupProcsFiles: systemd ? [] : cgroups.procsFiles(cgroupPath) }),
    });
    const resources = { ...spec.linux?.resources, devices: deviceFilter || ctx.rootless ? undefined : devices } as LinuxResources;
    if (systemd) {
      trace('systemd scope starting');
      // systemd is told the device rules too (DevicePolicy, DeviceAllow: its own program, beside pocrun's filter).
      // Rootless, none: the user's manager cannot attach a device program (as runc's rootless driver).
      try {
        systemd.startScope(cgroupPath, { id, slice: unit!.slice, pid: helper.pid, resources: { ...resources, devices: ctx.rootless ? undefined : devices } });
      } catch (err) {
        // A scope that did not start is no unit (startScope leaves none; a bus it could not reach holds none):
        // nothing for the clean-up below to stop, whose failure would be a warning printed before this error.
        noScope = true;
        throw err;
      }
      trace('systemd scope started');
    } else {
      cgroups.apply(cgroupPath, resources);
    }
    trace('resources applied');
    helper.sendPlan(planBytes);
    trace('plan sent');
    const session = helper;
    const initPid = await session.converse('created', (name, pid) => {
      if (name === 'maps') return void writeIdMaps(pid, spec);
      if (name === 'netdevices') return void moveNetDevices(pid, plan.netDevices);
      if (name === 'hooks') {
        const state = ociState({ ...record, pid }, 'creating');
        runHooks('prestart', spec.hooks?.prestart, state);
        runHooks('createRuntime', spec.hooks?.createRuntime, state);
        return JSON.stringify(ociState({ ...record, pid }, 'created'));
      }
      throw new PocrunError(`the helper asked for an unknown sync point "${name}"`);
    });
    session.close();
    releaseSlot();
    trace('created');
    const stat = readProcStat(initPid);
    if (!stat) throw new PocrunError('the container init exited during create');
    record.pid = initPid;
    record.initStartTime = stat.startTime;
    ctx.store.write(record);
    if (opts.pidFile) writePidFile(opts.pidFile, initPid);
    trace('state written');
    return { record, helper };
  } catch (err) {
    const initPid = helper?.initPid ?? 0;
    if (initPid > 0) killQuietly(initPid);
    helper?.kill('SIGKILL');
    removeContainer(ctx, { ...record, pid: initPid }, { runPoststop: false, cgroupGone: noScope });
    throw err instanceof UserError ? err : wrapError('create', err);
  }
}

/** The state record of a container about to be made (create, restore): pid 0 until its init exists. */
export function newRecord(
  spec: Spec,
  c: { id: string; bundle: string; rootfs: string; cgroupPath: string; cgroupDirs: Record<string, string>; unit?: { unit: string; slice: string } },
): ContainerRecord {
  const { id, bundle, rootfs, cgroupPath, unit } = c;
  return {
    ociVersion: spec.ociVersion,
    id,
    pid: 0,
    bundle,
    annotations: spec.annotations,
    initStartTime: '',
    created: new Date().toISOString(),
    rootfs,
    cgroupPath,
    cgroupDirs: c.cgroupDirs,
    ...(unit ? { systemd: { unit: unit.unit, slice: unit.slice } } : {}),
    hooks: { poststart: spec.hooks?.poststart, poststop: spec.hooks?.poststop },
    ...(sharesMountNamespace(spec) ? { sharedMounts: sharedMountsBefore(rootfs) } : {}),
    owner: ownerName(euid()),
  };
}

/**
 * The cgroup v2 directory the init is cloned into, or undefined to move the helper instead: on v1 (a process
 * is in one cgroup per hierarchy; CLONE_INTO_CGROUP names one), and when the helper joins an existing user
 * namespace first (root there may not write the host's cgroup.procs, and the clone checks the same right; the
 * helper moves itself before that setns).
 */
function cloneIntoCgroup(cgroups: CgroupDriver, cgroupPath: string, spec: Spec): string | undefined {
  if (cgroups.version !== 2) return undefined;
  if (spec.linux?.namespaces?.some((ns) => ns.type === 'user' && ns.path)) return undefined;
  return cgroups.dirs(cgroupPath).unified;
}

/**
 * A rootless create whose cgroup could not be made (`err`): fine when the container asks for no resources and
 * names no cgroup (runc's rule: an explicit linux.cgroupsPath must be made); otherwise the error names the field.
 */
function rootlessWithoutCgroup(spec: Spec, err: unknown): void {
  const why = `rootless: this user cannot make the container's cgroup (${(err as Error).message})`;
  const field = firstResourceField(spec.linux?.resources);
  if (field) {
    throw new PocrunError(`config.json ${field}: cannot set this limit: ${why}; a rootless container gets limits only from a cgroup delegated to its user (cgroup v2 with systemd: --systemd-cgroup)`, 1, { cause: err });
  }
  if (spec.linux?.cgroupsPath) throw new PocrunError(`config.json /linux/cgroupsPath: ${why}`, 1, { cause: err });
}

/** No mount namespace of its own: the container shares the runtime's (config-linux.md). */
function sharesMountNamespace(spec: Spec): boolean {
  return !spec.linux?.namespaces?.some((ns) => ns.type === 'mount');
}

/** The rootfs's absolute path, once it is known to be a directory. */
export function checkRootfs(spec: Spec, bundle: string): string {
  const path = resolve(bundle, spec.root?.path ?? '');
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new PocrunError(`config.json /root/path: rootfs ${path} does not exist`);
  }
  if (!isDir) throw new PocrunError(`config.json /root/path: rootfs ${path} is not a directory`);
  return path;
}

/** Written whole under a temporary name and renamed, so an engine never reads half a pid. */
export function writePidFile(path: string, pid: number): void {
  const file = resolve(path);
  const tmp = `${file}.pocrun-tmp`;
  try {
    writeFileSync(tmp, String(pid));
    renameSync(tmp, file);
  } catch (err) {
    throw wrapError(`write --pid-file ${file}`, err);
  }
}
