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
import { deviceCgroupRules, deviceFilterStep } from '../../plan/devices.js';
import type { RuntimeContext } from '../context.js';
import { checkRootfs, newRecord, writePidFile } from '../create-container.js';
import { removeContainer } from '../delete.js';
import { runHooks } from '../hooks.js';
import { ociState } from '../status.js';
import { checkId } from '../id.js';
import { bunRuntime, helperPath, parseHelperMessage, type BunSubprocess } from '../init-helper.js';
import { killQuietly, readProcStat, sleepMs } from '../../common/proc.js';
import { trace } from '../trace.js';
import { checkCommonOptions, externalNamespacePaths, FIRST_NS_FD, hooksScript, restoreArgs, type CriuCommonOptions, type ExternalNs } from './plan.js';
import { criuFailure, findCriu, needRoot } from './criu.js';
import { DESCRIPTORS_FILE } from './checkpoint.js';
import { newConsole, readTerminalKey, type NewConsole } from './terminal.js';

export interface RestoreCommandOptions extends CriuCommonOptions {
  id: string;
  bundle: string;
  imagePath?: string;
  workPath?: string;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
}


/** Returns the exit status: 0 once restored with --detach; without it, criu's once the restored init is gone. */
export async function restoreContainer(ctx: RuntimeContext, opts: RestoreCommandOptions): Promise<number> {
  trace('restore');
  needRoot('restore');
  checkCommonOptions(opts);
  const id = checkId(opts.id);
  const bundle = resolve(opts.bundle);
  if (!existsSync(bundle) || !statSync(bundle).isDirectory()) throw new PocrunError(`bundle ${bundle} is not a directory`);
  const spec = loadConfig(bundle);
  if (!spec.linux?.namespaces?.some((ns) => ns.type === 'mount')) {
    throw new PocrunError('restore: config.json /linux/namespaces has no mount namespace, which criu needs to restore the mounts');
  }
  const rootfs = checkRootfs(spec, bundle);
  const imagePath = resolve(opts.imagePath ?? 'checkpoint');
  if (!existsSync(join(imagePath, 'inventory.img'))) throw new PocrunError(`restore: ${imagePath} holds no checkpoint (no inventory.img)`);
  const descriptors = readDescriptors(imagePath);
  const terminalKey = readTerminalKey(imagePath);
  if (terminalKey && !opts.consoleSocket) {
    throw new PocrunError(`restore: the checkpoint in ${imagePath} is of a container with a terminal: its new one goes to --console-socket, which is missing`);
  }
  if (!terminalKey && opts.consoleSocket) {
    throw new PocrunError(`restore: --console-socket: the checkpoint in ${imagePath} is of a container without a terminal (its stdio is restored as it was)`);
  }
  const criu = findCriu(ctx.criuPath);
  trace('config loaded and checked');

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
  let tty: NewConsole | undefined;
  let proc: BunSubprocess | undefined;
  let initPid = 0;
  try {
    ctx.store.write(record);
    const devices = deviceCgroupRules(spec.linux?.resources?.devices);
    const resources = { ...spec.linux?.resources, devices } as LinuxResources;
    // cgroupfs: the cgroup now; its device filter (v2) is attached by the launcher, its other limits are written
    // while the launcher starts.
    if (!systemd) cgroups.create(cgroupPath);
    const filter = systemd ? undefined : cgroups.deviceFilter(cgroupPath, devices);
    trace('state recorded, cgroup made');
    mkdirSync(workPath, { recursive: true, mode: 0o700 });
    if (hasRestoreHooks) writeFileSync(hookScriptFile, hooksScript(process.execPath, ctx.root, id), { mode: 0o700 });
    mkdirSync(criuRoot, { mode: 0o755 });
    makeMountpoints(spec, rootfs);
    trace('mount points made');
    const externalNsFds: Partial<Record<ExternalNs, number>> = {};
    for (const [ns, path] of Object.entries(externalNamespacePaths(spec)) as [ExternalNs, string][]) {
      try {
        nsFds.push(openSync(path, 'r'));
      } catch (err) {
        throw wrapError(`config.json /linux/namespaces (${ns}): open ${path}`, err);
      }
      externalNsFds[ns] = FIRST_NS_FD + nsFds.length - 1;
    }
    if (terminalKey) tty = await newConsole(opts.consoleSocket!);
    const extraFds = [...nsFds, ...(tty ? [tty.fd] : [])];
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
      ...(tty ? { terminal: { fd: FIRST_NS_FD + nsFds.length, key: terminalKey!, path: tty.path } } : {}),
    });
    trace('criu arguments planned');
    ctx.log('debug', `${criu} ${args.join(' ')}`);
    // criu through the helper's launcher (pocrun-init --criu-launch, see there): fd 3 is pocrun's go-ahead, fd 4
    // the launcher's error line, closed at its exec of criu.
    const filterArgs = filter ? deviceFilterStep(filter).slice(1, 3) : [];
    proc = bunRuntime().spawn([helperPath(), '--criu-launch', rootfs, criuRoot, ...filterArgs, '--', criu, ...args], {
      stdio: ['inherit', 'inherit', 'inherit', 'pipe', 'pipe', ...extraFds],
    });
    trace('criu launcher spawned');
    const [gate, status] = [proc.stdio[3] as number, proc.stdio[4] as number];
    if (systemd) systemd.startScope(cgroupPath, { id, slice: unit!.slice, pid: proc.pid, resources });
    else {
      cgroups.apply(cgroupPath, { ...resources, devices: filter ? undefined : devices });
      joinCgroupSync(cgroups.procsFiles(cgroupPath), proc.pid);
    }
    trace('criu launcher in the cgroup');
    try {
      writeFileSync(gate, 'go\n');
    } catch {
      /* the launcher failed: its error line says why */
    }
    closeSync(gate);
    for (const fd of nsFds.splice(0)) closeSync(fd);
    if (tty) closeSync(tty.fd);
    tty = undefined;
    const launchError = await readToEnd(status);
    trace('criu started');
    if (launchError) {
      const message = parseHelperMessage(launchError.trim());
      throw message.kind === 'error' ? message.error : new PocrunError(`restore container "${id}": criu's launcher said ${JSON.stringify(launchError.trim())}`);
    }

    const exited = proc.exited;
    let done: number | undefined;
    // Detached, criu exits once the tree runs; in the foreground it stays the init's parent, so the pid file
    // (written once the tree is restored) is awaited while criu runs.
    if (opts.detach) {
      // Waited for in a blocking call (the helper polls criu's pidfd), not in the event loop: while the loop is
      // idle Bun's GC timer collects every second, 0.1-0.35 s of CPU taken from criu at each restore in the
      // emulated guest (bench/results/checkpoint-2026-12-05-guest-restore.txt).
      bunRuntime().spawnSync([helperPath(), '--wait-exit', String(proc.pid)], { stdio: ['ignore', 'ignore', 'ignore'] });
      done = await exited;
    } else {
      void exited.then((code) => (done = code));
      while (!existsSync(criuPidFile) && done === undefined) await new Promise((r) => setTimeout(r, 5));
    }
    if ((done !== undefined && done !== 0) || !existsSync(criuPidFile)) {
      throw criuFailure(criu, `restore container "${id}"`, done === undefined ? 'criu wrote no pid file' : `criu exited with status ${done}`, join(workPath, 'restore.log'), opts.workPath !== undefined);
    }
    trace('criu done');
    initPid = readPid(criuPidFile);
    const stat = readProcStat(initPid);
    if (!stat) throw new PocrunError(`restore container "${id}": the restored init (pid ${initPid}) exited at once`);
    record.pid = initPid;
    record.initStartTime = stat.startTime;
    record.created = new Date().toISOString();
    ctx.store.write(record);
    if (opts.pidFile) writePidFile(opts.pidFile, initPid);
    trace('recorded');
  } catch (err) {
    proc?.kill('SIGKILL');
    if (initPid > 0) killQuietly(initPid);
    for (const fd of nsFds) closeSync(fd);
    if (tty) closeSync(tty.fd);
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

/** Everything on a pipe until its writer closes it (the launcher's error line, or nothing once criu runs). */
async function readToEnd(fd: number): Promise<string> {
  try {
    // Bun's pipes to a child are non-blocking: its file reader waits in the event loop.
    return await (globalThis as unknown as { Bun: { file(fd: number): { text(): Promise<string> } } }).Bun.file(fd).text();
  } finally {
    closeSync(fd);
  }
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
