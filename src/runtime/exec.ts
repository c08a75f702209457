import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigFieldError, PocrunError, wrapError } from '../errors.js';
import { loadConfig } from '../spec/validate.js';
import { compileExecPlan, parseProcessFile, processFromFlags, type ExecFlags, type Process } from '../plan/exec-plan.js';
import { JOIN_ORDER } from '../plan/namespaces.js';
import { encodePlan } from '../plan/wire.js';
import { HelperSession, HelperStepError } from './init-helper.js';
import { killQuietly } from '../common/proc.js';
import { containerStatus, initAlive, ociState } from './status.js';
import { writePidFile } from './create-container.js';
import type { RuntimeContext } from './context.js';
import { trace } from './trace.js';
import { detectHostSecurity } from './host-probes.js';
import { forwardSignals } from '../vocabulary/signals.js';
import { joinCgroupSync, subCgroupProcsFiles } from '../cgroups/join.js';
import { euid, isPermissionError } from './rootless.js';
import { releaseSlot, releaseSlotIfPreserved } from './admission.js';

export interface ExecOptions extends ExecFlags {
  id: string;
  /** process.json (--process); then `args` and the flags that shape the process must not be given. */
  processFile?: string;
  consoleSocket?: string;
  detach: boolean;
  pidFile?: string;
  preserveFds: number;
  /** --cgroup [CONTROLLER:]PATH: existing sub-cgroups of the container's to run in (as runc). */
  cgroups?: string[];
  ignorePaused?: boolean;
}

/**
 * pocrun exec: runs a new process in a running (or created) container: in all of its namespaces and its cgroup,
 * with the process's own credentials, capabilities and rlimits, under the container's seccomp profile.
 * Detached: writes --pid-file and returns 0 once the process runs. Otherwise waits for it and returns its exit
 * status (128+n when signal n ended it), forwarding signals to it.
 */
export async function execInContainer(ctx: RuntimeContext, opts: ExecOptions): Promise<number> {
  if (opts.preserveFds < 0 || !Number.isInteger(opts.preserveFds)) throw new PocrunError('exec: --preserve-fds must be a non-negative integer');
  if (!opts.processFile && opts.args.length === 0) throw new PocrunError('exec: no command given (args or --process FILE)');
  const record = ctx.store.read(opts.id);
  const container = loadConfig(record.bundle);
  const proc: Process = opts.processFile
    ? parseProcessFile(readProcessFile(opts.processFile), `process ${opts.processFile}`)
    : processFromFlags(containerProcess(container, opts.args), opts);
  const mode = opts.detach ? 'fork' : 'wait';

  const unlock = ctx.store.lock(opts.id);
  let helper: HelperSession | undefined;
  let pid = 0;
  let synced = false;
  // In the foreground the helper passes each signal on to the process.
  const stopForwarding = opts.detach ? () => {} : forwardSignals(() => helper);
  try {
    const status = containerStatus(ctx, record);
    // runc's words for a stopped one ("cannot exec in a stopped container").
    if (status === 'stopped') throw notNow(`cannot exec in container "${opts.id}": it is stopped (cannot exec in a stopped container)`);
    if (status === 'creating') throw notNow(`cannot exec in container "${opts.id}": it is creating`);
    // --ignore-paused (runc's): the process joins the frozen cgroup and starts when the container is resumed; exec
    // returns (or, in the foreground, waits) only then. The lock goes now, since `resume` needs it, and so does the
    // admission slot: nobody knows when the resume comes.
    if (status === 'paused' && !opts.ignorePaused) {
      throw notNow(`cannot exec in container "${opts.id}": it is paused (resume it first, or use --ignore-paused)`);
    }
    if (status === 'paused') {
      // Paused is read from the freezer before the init (as runc): its init may be gone, and its namespaces with it.
      if (!initAlive(record)) {
        throw notNow(`cannot exec in container "${opts.id}": it is paused and its init has exited (resume it and it reads stopped)`);
      }
      unlock();
      releaseSlot();
    }
    const namespaces = containerNamespaces(record.pid);
    const plan = encodePlan(
      compileExecPlan(container, proc, {
        namespaces,
        root: record.sharedMounts && !namespaces.some(([name]) => name === 'mnt') ? `/proc/${record.pid}/root` : undefined,
        consoleSocket: opts.consoleSocket && resolve(opts.consoleSocket),
        preserveFds: opts.preserveFds,
        mode,
        userNamespaceFirst: euid() !== 0,
        host: { security: detectHostSecurity },
      }),
    );
    trace('exec plan compiled');
    const cgroups = ctx.cgroupsOf(record);
    const procsFiles = opts.cgroups?.length
      ? subCgroupProcsFiles(cgroups, record.cgroupPath, opts.cgroups)
      : cgroups.procsFiles(record.cgroupPath);
    // --detach: the helper's parent exits right after the fork, so it may join the cgroup first, moving itself
    // as it starts (as for create). In the foreground it stays, as the process's parent: only the child is
    // moved, at its `sync cgroup`. So is it with an initial CPU affinity, which is for before the move. Rootless
    // too: a move the user may not make is then left out (below).
    const helperJoins = opts.detach && !proc.execCPUAffinity?.initial && !ctx.rootless;
    releaseSlotIfPreserved(opts.preserveFds);
    helper = HelperSession.spawn({
      preserveFds: opts.preserveFds,
      ownProcessGroup: !opts.detach,
      cgroupProcsFiles: helperJoins ? procsFiles : undefined,
    });
    helper.sendPlan(plan);
    // An exec plan's one sync point: `cgroup`, answered with the container state (which a seccomp agent gets). Then
    // the channel's end means the process runs; a failure up to and including the execve is an `error` line.
    pid = await helper.converse('end', (name, child) => {
      if (name !== 'cgroup') throw new PocrunError(`the helper asked for an unknown sync point "${name}"`);
      if (!helperJoins) {
        try {
          joinCgroupSync(procsFiles, child);
        } catch (err) {
          // Rootless, as runc (its setnsProcess with rootless cgroups): where the caller's cgroup is outside the
          // user's delegated subtree, cgroup v2 refuses the move (write access to the common ancestor's
          // cgroup.procs), and the process stays in its caller's cgroup.
          if (!ctx.rootless || !isPermissionError(err)) throw err;
          ctx.log('debug', `rootless: the exec'd process stays in its caller's cgroup (${(err as Error).message})`);
        }
      }
      // The init could have exited (and its pid been reused) since the check: then nothing may run.
      if (!initAlive(record)) throw new PocrunError(`cannot exec in container "${opts.id}": it stopped`);
      synced = true;
      return JSON.stringify(ociState(record, status));
    });
    if (!pid || !synced) throw new PocrunError('the process exited before it was started');
    helper.close();
    trace('exec created');
    if (opts.pidFile) writePidFile(opts.pidFile, pid);
  } catch (err) {
    stopForwarding();
    const child = pid || helper?.initPid || 0;
    if (child > 0) killQuietly(child);
    helper?.kill('SIGKILL');
    if (err instanceof NotNowError) throw err;
    // The plan's and the helper's errors name config.json fields; for exec, /process/... is the exec'd process
    // (process.json or the flags).
    const where = opts.processFile ?? 'process';
    const moved = err instanceof ConfigFieldError || err instanceof HelperStepError ? err.movedUnder('/process', where) : err;
    throw wrapError('exec failed', moved);
  } finally {
    unlock();
    releaseSlot();
  }
  if (opts.detach) return 0;
  try {
    return (await helper.exited) ?? 1;
  } finally {
    stopForwarding();
  }
}

/** An error about the container's state (stopped, paused, ...): shown as it is, not as a failed exec. */
class NotNowError extends PocrunError {}

function notNow(message: string): NotNowError {
  return new NotNowError(message);
}

function readProcessFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw wrapError(`exec --process ${file}`, err);
  }
}

/** The container's own process, the base that exec's flags change (runc reads it from the bundle too). */
function containerProcess(container: ReturnType<typeof loadConfig>, args: string[]): Process {
  if (!container.process) return { cwd: '/', args, user: { uid: 0, gid: 0 } };
  return container.process;
}

/** The init's namespaces that differ from ours: those the exec'd process must join. */
export function containerNamespaces(initPid: number): [string, string][] {
  const out: [string, string][] = [];
  for (const name of JOIN_ORDER) {
    const theirs = `/proc/${initPid}/ns/${name}`;
    let a, b;
    try {
      a = statSync(theirs);
    } catch (err) {
      if (name === 'time' || name === 'cgroup') continue; // kernels without them
      throw wrapError(`cannot read the namespaces of the container init (pid ${initPid})`, err);
    }
    try {
      b = statSync(`/proc/self/ns/${name}`);
    } catch {
      b = undefined;
    }
    if (!b || a.ino !== b.ino || a.dev !== b.dev) out.push([name, theirs]);
  }
  return out;
}
