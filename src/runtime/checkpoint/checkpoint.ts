/**
 * pocrun checkpoint: criu dumps the running container into --image-path, with what criu cannot see alone
 * written beside its images (descriptors.json, as runc's) and passed as options (plan.ts). criu is told through
 * its RPC, started by the native front before this program (criu-rpc.ts). Without --leave-running or --pre-dump
 * the container is gone afterwards (criu killed its processes) and is deleted, as runc destroys it.
 */
import { existsSync, mkdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Spec } from '../../spec/generated/config.js';
import { UserError, PocrunError, wrapError } from '../../errors.js';
import { loadConfig } from '../../spec/validate.js';
import type { RuntimeContext } from '../context.js';
import { removeContainer } from '../delete.js';
import { initAlive, withLockedContainer } from '../status.js';
import { checkCommonOptions, configFile, dumpPlan, externalNamespacePaths, type CriuCommonOptions, type ExternalNs } from './plan.js';
import { criuFailure, needRoot } from './criu.js';
import { CriuRefused, frontCriu, rpcDump } from './criu-rpc.js';
import { initTerminalKey, writeTerminalKey } from './terminal.js';
import { trace } from '../trace.js';

export interface CheckpointOptions extends CriuCommonOptions {
  id: string;
  imagePath?: string;
  workPath?: string;
  parentPath?: string;
  leaveRunning: boolean;
  preDump: boolean;
}

/** The file runc writes beside criu's images: the init's fds 0-2 as /proc/<pid>/fd shows them. */
export const DESCRIPTORS_FILE = 'descriptors.json';

/** The dump's options for criu (plan.ts configFile), in the work directory while criu runs. */
const CONFIG_FILE = 'pocrun-criu.conf';

export function checkpointContainer(ctx: RuntimeContext, opts: CheckpointOptions): void {
  trace('checkpoint');
  needRoot('checkpoint');
  checkCommonOptions(opts);
  const service = frontCriu(ctx.criuPath);
  const criu = service.criu;
  withLockedContainer(ctx, opts.id, (record, status) => {
    trace('locked and status');
    if (status !== 'running' && status !== 'paused') throw new PocrunError(`cannot checkpoint container "${opts.id}": it is ${status}, not running`);
    // Paused is what a frozen cgroup reads even once its init has died (runc's order): nothing is left to dump.
    if (!initAlive(record)) throw new PocrunError(`cannot checkpoint container "${opts.id}": it is paused and its init has exited (resume it and it reads stopped)`);
    if (record.sharedMounts) {
      throw new PocrunError(`cannot checkpoint container "${opts.id}": it has no mount namespace of its own (config.json /linux/namespaces), which criu needs to restore its mounts`);
    }
    const spec = bundleConfig(record.bundle, opts.id);
    trace('config loaded');
    // runc's default: ./checkpoint; the work directory (logs, stats) is the image directory unless given.
    const imagePath = resolve(opts.imagePath ?? 'checkpoint');
    const workPath = resolve(opts.workPath ?? imagePath);
    const made = [imagePath, workPath].filter((dir) => !existsSync(dir));
    try {
      for (const dir of made) mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (!opts.preDump) writeFileSync(join(imagePath, DESCRIPTORS_FILE), JSON.stringify(initDescriptors(record.pid)), { mode: 0o600 });
      const externalTty = opts.preDump ? undefined : initTerminalKey(record.pid);
      if (externalTty) writeTerminalKey(imagePath, externalTty);
      trace('descriptors');
      const cgroups = ctx.cgroupsOf(record);
      const dirs = record.cgroupDirs;
      const plan = dumpPlan(spec, {
        ...opts,
        pid: record.pid,
        freezeCgroup: cgroups.version === 2 ? dirs.unified : dirs.freezer,
        externalNsInodes: nsInodes(externalNamespacePaths(spec)),
        externalTty,
      }, maskedFiles(spec, record.pid));
      const config = join(workPath, CONFIG_FILE);
      writeFileSync(config, configFile(plan.options), { mode: 0o600 });
      trace('options');
      ctx.log('debug', `criu ${plan.type} --tree ${plan.pid} (${criu} swrk, pid ${service.pid}), options in ${config}`);
      trace('criu request');
      try {
        rpcDump(service, { ...plan, imagePath, workPath, logLevel: 4, configFile: config });
      } catch (err) {
        if (!(err instanceof CriuRefused)) throw err;
        throw criuFailure(criu, `checkpoint container "${opts.id}"`, err.message, join(workPath, plan.logFile), made.length === 0);
      } finally {
        rmSync(config, { force: true });
      }
      trace('criu done');
    } catch (err) {
      // Directories this command made are removed again: a failed checkpoint leaves nothing (criu's log is
      // quoted in the error; kept only in a directory the caller gave that existed before).
      for (const dir of made.reverse()) rmSync(dir, { recursive: true, force: true });
      throw err instanceof UserError ? err : wrapError(`checkpoint container "${opts.id}"`, err);
    }
    if (!opts.leaveRunning && !opts.preDump) {
      removeContainer(ctx, record, { runPoststop: true });
      trace('deleted');
    }
  });
}

/** The container's config.json from its bundle (the record keeps what later commands need, not the whole config). */
function bundleConfig(bundle: string, id: string): Spec {
  if (!existsSync(join(bundle, 'config.json'))) {
    throw new PocrunError(`cannot checkpoint container "${id}": its bundle's config.json (${bundle}) is gone, and criu needs its mounts and namespaces`);
  }
  return loadConfig(bundle);
}

/** What the init's fds 0-2 point to ("pipe:[123]", "/dev/null", ...); a closed one is "". */
function initDescriptors(pid: number): string[] {
  return [0, 1, 2].map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
}

/** The masked paths that are files (bound over with /dev/null) in the running container; directories get a tmpfs. */
function maskedFiles(spec: Spec, pid: number): string[] {
  return (spec.linux?.maskedPaths ?? []).filter((path) => {
    try {
      return !statSync(`/proc/${pid}/root${path}`).isDirectory();
    } catch {
      return false;
    }
  });
}

function nsInodes(paths: Partial<Record<ExternalNs, string>>): Partial<Record<ExternalNs, number>> {
  const out: Partial<Record<ExternalNs, number>> = {};
  for (const [ns, path] of Object.entries(paths) as [ExternalNs, string][]) {
    try {
      out[ns] = statSync(path).ino;
    } catch (err) {
      throw wrapError(`config.json /linux/namespaces (${ns}): ${path}`, err);
    }
  }
  return out;
}
