/**
 * pocrun restore: a container made again from criu's images, as `create` makes one from its config: the state
 * directory and record, the cgroup (or systemd scope) with the config's resources, then criu restores the
 * process tree into it (the mounts under the bundle's rootfs, the bind mounts from their sources, the joined
 * namespaces from their paths, the init's stdio pipes from pocrun's own), and the record gets the restored
 * init's pid, so state, kill, exec, ps, pause, delete and checkpoint work on it as on any other. A failure at
 * any step undoes every earlier one.
 */
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Spec } from '../../spec/generated/config.js';
import { UserError, PocrunError, wrapError } from '../../errors.js';
import { loadConfig } from '../../spec/validate.js';
import { resolveCgroupPath, type LinuxResources } from '../../cgroups/index.js';
import { joinCgroupSync } from '../../cgroups/join.js';
import { systemdUnitFor } from '../../cgroups/systemd-unit.js';
import { deviceCgroupRules } from '../../plan/devices.js';
import type { RuntimeContext } from '../context.js';
import { checkRootfs, newRecord, writePidFile } from '../create-container.js';
import { removeContainer } from '../delete.js';
import { runHooks } from '../hooks.js';
import { ociState } from '../status.js';
import { checkId } from '../id.js';
import { bunRuntime, runDeviceFilter, type BunSubprocess } from '../init-helper.js';
import { killQuietly, readProcStat, sleepMs } from '../../common/proc.js';
import { checkCommonOptions, externalNamespacePaths, FIRST_NS_FD, hooksScript, restoreArgs, type CriuCommonOptions, type ExternalNs } from './plan.js';
import { criuFailure, findCriu, needRoot } from './criu.js';
import { DESCRIPTORS_FILE } from './checkpoint.js';

export interface RestoreCommandOptions extends CriuCommonOptions {
  id: string;
  bundle: string;
  imagePath?: string;
  workPath?: string;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
}

/**
 * criu is started through `unshare --mount` and a shell that waits for pocrun's go-ahead on fd 3: meanwhile
 * pocrun puts it into the container's cgroup (or starts the systemd scope with it), so that criu and the tasks
 * it forks are born there, as runc applies the cgroup to criu before the restore. The shell then bind-mounts
 * the rootfs where criu wants its root (a mount point of its own, as runc's criu-root) in that mount namespace,
 * so the host's mount table never holds it, and becomes criu. The namespace's mounts are slaves of the host's
 * (`--propagation slave`), not private: nothing propagates back to the host, and the bind mount keeps the
 * rootfs's peer group as its master, which criu 3.17 copies to the restored root (MOVE_MOUNT_SET_GROUP fails
 * with EINVAL from a private mount: "mnt-v2: Failed to copy sharing").
 */
const LAUNCH = 'read -r go <&3 && exec 3<&- && [ "$go" = go ] && mount --rbind -- "$1" "$2" && shift 2 && exec "$@"';

/** Returns the exit status: 0 once restored with --detach; without it, criu's once the restored init is gone. */
export async function restoreContainer(ctx: RuntimeContext, opts: RestoreCommandOptions): Promise<number> {
  needRoot('restore');
  checkCommonOptions(opts);
  const id = checkId(opts.id);
  const bundle = resolve(opts.bundle);
  if (!existsSync(bundle) || !statSync(bundle).isDirectory()) throw new PocrunError(`bundle ${bundle} is not a directory`);
  const spec = loadConfig(bundle);
  if (opts.consoleSocket || spec.process?.terminal) {
    throw new PocrunError('restore of a container with a terminal (config.json /process/terminal, --console-socket) is not supported: criu\'s command line cannot hand the new pty master back');
  }
  if (!spec.linux?.namespaces?.some((ns) => ns.type === 'mount')) {
    throw new PocrunError('restore: config.json /linux/namespaces has no mount namespace, which criu needs to restore the mounts');
  }
  const rootfs = checkRootfs(spec, bundle);
  const imagePath = resolve(opts.imagePath ?? 'checkpoint');
  if (!existsSync(join(imagePath, 'inventory.img'))) throw new PocrunError(`restore: ${imagePath} holds no checkpoint (no inventory.img)`);
  const descriptors = readDescriptors(imagePath);
  const criu = findCriu(ctx.criuPath);

  const systemd = ctx.systemdCgroup ? ctx.systemdCgroups() : undefined;
  const unit = systemd ? systemdUnitFor(spec.linux?.cgroupsPath, id) : undefined;
  const cgroups = systemd ?? ctx.cgroups();
  const cgroupPath = unit ? unit.cgroupPath : resolveCgroupPath(spec.linux?.cgroupsPath, id);
  const record = newRecord(spec, { id, bundle, rootfs, cgroupPath, cgroupDirs: cgroups.dirs(cgroupPath), unit });
  const stateDir = ctx.store.makeDir(id);
  // runc's default work directory (logs) is the container's own: the images stay as they were.
  const workPath = resolve(opts.workPath ?? join(stateDir, 'criu.work'));
  const criuRoot = join(stateDir, 'criu-root');
  const criuPidFile = join(stateDir, 'restore.pid');
  const hookScriptFile = join(stateDir, 'criu-hooks.sh');
  const hasRestoreHooks = Boolean(spec.hooks?.prestart?.length || spec.hooks?.createRuntime?.length);
  const nsFds: number[] = [];
  let proc: BunSubprocess | undefined;
  let initPid = 0;
  try {
    ctx.store.write(record);
    const devices = deviceCgroupRules(spec.linux?.resources?.devices);
    const resources = { ...spec.linux?.resources, devices } as LinuxResources;
    if (!systemd) {
      cgroups.create(cgroupPath);
      const filter = cgroups.deviceFilter(cgroupPath, devices);
      cgroups.apply(cgroupPath, { ...resources, devices: filter ? undefined : devices });
      if (filter) runDeviceFilter(filter);
    }
    mkdirSync(workPath, { recursive: true, mode: 0o700 });
    if (hasRestoreHooks) writeFileSync(hookScriptFile, hooksScript(process.execPath, ctx.root, id), { mode: 0o700 });
    mkdirSync(criuRoot, { mode: 0o755 });
    makeMountpoints(spec, rootfs);
    const externalNsFds: Partial<Record<ExternalNs, number>> = {};
    for (const [ns, path] of Object.entries(externalNamespacePaths(spec)) as [ExternalNs, string][]) {
      try {
        nsFds.push(openSync(path, 'r'));
      } catch (err) {
        throw wrapError(`config.json /linux/namespaces (${ns}): open ${path}`, err);
      }
      externalNsFds[ns] = FIRST_NS_FD + nsFds.length - 1;
    }
    const args = restoreArgs(spec, {
      ...opts,
      imagePath,
      workPath,
      root: criuRoot,
      cgroupRoot: cgroupPath,
      detach: opts.detach,
      pidFile: criuPidFile,
      descriptors,
      externalNsFds,
      ...(hasRestoreHooks ? { actionScript: hookScriptFile } : {}),
    });
    ctx.log('debug', `${criu} ${args.join(' ')}`);
    proc = bunRuntime().spawn(['unshare', '--mount', '--propagation', 'slave', 'sh', '-c', LAUNCH, 'pocrun-criu', rootfs, criuRoot, criu, ...args], {
      stdio: ['inherit', 'inherit', 'inherit', 'pipe', ...nsFds],
    });
    const gate = proc.stdio[3] as number;
    if (systemd) systemd.startScope(cgroupPath, { id, slice: unit!.slice, pid: proc.pid, resources });
    else joinCgroupSync(cgroups.procsFiles(cgroupPath), proc.pid);
    writeFileSync(gate, 'go\n');
    closeSync(gate);
    for (const fd of nsFds.splice(0)) closeSync(fd);

    const exited = proc.exited;
    let done: number | undefined;
    void exited.then((code) => (done = code));
    // Detached, criu exits once the tree runs; in the foreground it stays the init's parent, so the pid file
    // (written once the tree is restored) is awaited while criu runs.
    while (!existsSync(criuPidFile) && done === undefined) await new Promise((r) => setTimeout(r, 5));
    if (opts.detach) done = await exited;
    if ((done !== undefined && done !== 0) || !existsSync(criuPidFile)) {
      throw criuFailure(criu, `restore container "${id}"`, { status: done ?? null, output: '' }, join(workPath, 'restore.log'), opts.workPath !== undefined);
    }
    initPid = readPid(criuPidFile);
    const stat = readProcStat(initPid);
    if (!stat) throw new PocrunError(`restore container "${id}": the restored init (pid ${initPid}) exited at once`);
    record.pid = initPid;
    record.initStartTime = stat.startTime;
    record.created = new Date().toISOString();
    ctx.store.write(record);
    if (opts.pidFile) writePidFile(opts.pidFile, initPid);
  } catch (err) {
    proc?.kill('SIGKILL');
    if (initPid > 0) killQuietly(initPid);
    for (const fd of nsFds) closeSync(fd);
    if (proc) await proc.exited;
    removeContainer(ctx, { ...record, pid: initPid }, { runPoststop: false });
    throw err instanceof UserError ? err : wrapError(`restore container "${id}"`, err);
  } finally {
    try {
      rmdirSync(criuRoot);
    } catch {
      /* removed with the state directory */
    }
  }
  if (opts.detach) return 0;
  // Foreground, as runc's restore without --detach: wait for the container, then delete it.
  const status = await proc.exited;
  while (readProcStat(initPid) && readProcStat(initPid)!.state !== 'Z') sleepMs(5);
  const { deleteContainer } = await import('../delete.js');
  deleteContainer(ctx, { id, force: true });
  return status;
}

/**
 * `pocrun restore-hooks ID PID`, run by criu's action script at its setup-namespaces step (see hooksScript):
 * the prestart and createRuntime hooks, with the state of the container being restored and its init's pid.
 */
export function runRestoreHooks(ctx: RuntimeContext, id: string, pid: number): void {
  const record = ctx.store.read(id);
  if (record.pid !== 0) throw new PocrunError(`restore-hooks: container "${id}" is not being restored`);
  const spec = loadConfig(record.bundle);
  const state = ociState({ ...record, pid }, 'creating');
  runHooks('prestart', spec.hooks?.prestart, state);
  runHooks('createRuntime', spec.hooks?.createRuntime, state);
}

function readDescriptors(imagePath: string): string[] {
  const file = join(imagePath, DESCRIPTORS_FILE);
  try {
    const fds = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (Array.isArray(fds) && fds.every((d) => typeof d === 'string')) return fds as string[];
  } catch (err) {
    throw wrapError(`restore: ${file} (written by checkpoint)`, err);
  }
  throw new PocrunError(`restore: ${file} is not a list of the init's descriptors`);
}

function readPid(file: string): number {
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new PocrunError(`restore: criu's pid file ${file} holds no pid`);
  return pid;
}

/**
 * The mount points criu mounts onto must exist in the rootfs, as create makes them (a rootfs unpacked anew, as
 * podman's --import does, lacks them): a file for a bind mount of a file, else a directory. Those under a
 * tmpfs of the config are left to criu, which restores the tmpfs with its contents. A path through a symbolic
 * link is left alone: criu then names it.
 */
function makeMountpoints(spec: Spec, rootfs: string): void {
  const tmpfs = (spec.mounts ?? []).filter((m) => m.type === 'tmpfs').map((m) => m.destination.replace(/\/+$/, ''));
  for (const m of spec.mounts ?? []) {
    if (tmpfs.some((t) => m.destination.startsWith(`${t}/`))) continue;
    const target = join(rootfs, m.destination);
    if (existsSync(target) || throughLink(rootfs, m.destination)) continue;
    const isBind = m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind');
    let fileSource = false;
    try {
      fileSource = isBind && !statSync(m.source ?? '').isDirectory();
    } catch {
      /* criu names a missing source */
    }
    try {
      if (fileSource) {
        mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
        closeSync(openSync(target, 'a', 0o644));
      } else {
        mkdirSync(target, { recursive: true, mode: 0o755 });
      }
    } catch (err) {
      throw wrapError(`restore: make the mount point ${m.destination} in the rootfs`, err);
    }
  }
}

function throughLink(rootfs: string, destination: string): boolean {
  let path = rootfs;
  for (const part of destination.split('/').filter(Boolean)) {
    path = join(path, part);
    try {
      if (lstatSync(path).isSymbolicLink()) return true;
    } catch {
      return false;
    }
  }
  return false;
}
