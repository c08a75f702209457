import { accessSync, closeSync, constants, existsSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CgroupDriver, DeviceFilter } from '../cgroups/index.js';
import { deviceFilterStep } from '../plan/devices.js';
import { stepPurpose } from '../vocabulary/steps.js';
import { PocrunError, errnoCode, pointerUnder } from '../errors.js';
import { sleepMs } from '../common/proc.js';
import { trace } from './trace.js';

/** Where pocrun-init lives: beside the pocrun binary, or where POCRUN_INIT says (tests, development). */
export function helperPath(): string {
  const path = process.env.POCRUN_INIT ?? join(dirname(process.execPath), 'pocrun-init');
  if (!existsSync(path)) throw new PocrunError(`the helper ${path} is missing: run "npm run build" (or set POCRUN_INIT)`);
  return path;
}

export interface BunSubprocess {
  pid: number;
  stdio: (number | null | undefined)[];
  exited: Promise<number>;
  exitCode: number | null;
  signalCode: string | null;
  kill(signal?: number | string): void;
}

export interface BunRuntime {
  spawnSync(cmd: string[], opts: { stdio: string[] }): { exitCode: number | null; stdout: Uint8Array; stderr: Uint8Array };
  spawn(
    cmd: string[],
    opts: {
      stdio: (string | number)[];
      detached?: boolean;
      env?: Record<string, string | undefined>;
      serialization?: 'json';
      ipc?: (message: unknown) => void;
      onDisconnect?: () => void;
    },
  ): BunSubprocess;
}

/**
 * Starts the kernel's wait for a first cgroup move before the real move is due. The first move into a v1 cgroup
 * waits for an RCU grace period (5-25 ms, a kernel cost runc pays too); the kernel takes one lock for every
 * move, and a move that follows within the next grace period is quick. A process that moves itself into the
 * cgroup it is already in changes nothing, but takes that lock: started first thing, the grace period passes
 * while pocrun reads and checks the config (measured: a first move of ~10 ms becomes ~0.3 ms). That process is
 * the helper in a mode of its own (`pocrun-init --cgroup-move FILE`: it writes its own pid to FILE and exits;
 * nobody waits for it, Bun reaps it), not a write from Bun's thread pool, whose two threads would stay for the
 * whole command (~0.4 MB). Failures are ignored: it is only a head start.
 */
export function startCgroupMoveGracePeriod(driver: CgroupDriver, opts: { create?: boolean } = {}): void {
  // A create on cgroup v2 moves no process (see cloneIntoCgroup): nothing to give a head start.
  if (opts.create && driver.version === 2) return;
  try {
    const file = driver.ownProcsFile();
    // A user who may not write it (rootless, its cgroup not delegated) would spawn a helper only to fail: ~3 ms.
    if (file && canWrite(file)) bunRuntime().spawn([helperPath(), '--cgroup-move', file], { stdio: ['ignore', 'ignore', 'ignore'] });
  } catch {
    /* no head start */
  }
}

function canWrite(file: string): boolean {
  try {
    accessSync(file, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * `update` of a cgroup v2 container's device rules: the helper in a mode of its own (`pocrun-init
 * --device-filter DIR PROGRAM`) attaches the filter in place of the one before, as its `device-filter` step does
 * at create. A failure is the step's error line, which names linux.resources.devices.
 */
export function runDeviceFilter(filter: DeviceFilter): void {
  const [, dir, program] = deviceFilterStep(filter);
  const r = bunRuntime().spawnSync([helperPath(), '--device-filter', dir!, program!], { stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.exitCode === 0) return;
  const message = parseHelperMessage(Buffer.from(r.stdout).toString('utf8').trim());
  if (message.kind === 'error') throw message.error;
  throw new PocrunError(`attach device filter (config.json /linux/resources/devices): the helper exited with ${r.exitCode ?? 'a signal'}`);
}

/**
 * A running pocrun-init and the runtime's side of the sync protocol (src/plan/PROTOCOL.md). The protocol is
 * strictly question and answer: the runtime waits for each message, answers on the sync socket, waits again.
 *
 * The helper's messages come on Bun's IPC channel (one JSON string a line): the wait is in the event loop and
 * costs no CPU, which matters when fifty containers are created at once, and, unlike a stream read of a
 * socket, the end of the channel is noticed without Bun's thread pool (a stream closes its fd from two pool
 * threads, ~0.4 MB more per pocrun process).
 */
export class HelperSession {
  private proc!: BunSubprocess;
  /** The runtime's ends of the plan socket and of the sync socket (replies). */
  private planFd = -1;
  private syncFd = -1;
  private readonly lines: string[] = [];
  private ended = false;
  private closed = false;
  private wake?: () => void;
  /** The container init's pid once the helper reported it. */
  initPid = 0;

  private constructor() {}

  /**
   * Starts the helper; it waits for its plan, so the caller can prepare meanwhile. With `cgroupProcsFiles` it
   * first moves itself into that cgroup: the kernel's wait for a first move overlaps with the caller's planning.
   * With `cloneIntoCgroup` it stays where it is and the init is born in the cgroup (no move at all).
   * Bun.spawn, not node:child_process: the latter costs ~6 ms per spawn in the Bun binary, Bun.spawn ~0.6 ms.
   */
  static spawn(opts: {
    preserveFds: number;
    ownProcessGroup?: boolean;
    cgroupProcsFiles?: readonly string[];
    /** A cgroup v2 directory that the helper's `clone` puts the container's init straight into (CLONE_INTO_CGROUP). */
    cloneIntoCgroup?: string;
    /** The helper makes the user namespace before its re-exec (`--new-userns`, PROTOCOL.md), asking `sync maps`. */
    newUserNamespace?: boolean;
    /** With newUserNamespace: the uid_map and gid_map texts, each only the caller's own id, which the helper writes itself. */
    ownMaps?: readonly [uidMap: string, gidMap: string];
  }): HelperSession {
    const bun = bunRuntime();
    const preserved = Array.from({ length: opts.preserveFds }, (_, i) => 3 + i);
    const planIndex = 3 + opts.preserveFds;
    const syncIndex = planIndex + 1;
    const session = new HelperSession();
    try {
      const userns = opts.newUserNamespace ? ['--new-userns', ...(opts.ownMaps ? ['--own-maps', ...opts.ownMaps] : [])] : [];
      const cgroupArgs = [...userns, ...(opts.cloneIntoCgroup ? ['--clone-into-cgroup', opts.cloneIntoCgroup] : []), ...(opts.cgroupProcsFiles ?? [])];
      session.proc = bun.spawn([helperPath(), String(planIndex), 'ipc', String(syncIndex), ...cgroupArgs], {
        stdio: ['inherit', 'inherit', 'inherit', ...preserved, 'pipe', 'pipe'],
        detached: opts.ownProcessGroup ?? false,
        serialization: 'json',
        ipc: (message) => session.received(message),
        onDisconnect: () => session.received(undefined),
      });
    } catch (err) {
      throw new PocrunError(`cannot run the helper ${helperPath()}: ${(err as Error).message}`);
    }
    session.planFd = session.proc.stdio[planIndex] as number;
    session.syncFd = session.proc.stdio[syncIndex] as number;
    trace('helper spawned');
    return session;
  }

  /** A message from the helper (a JSON string whose characters are the line's bytes), or the channel's end. */
  private received(message: unknown): void {
    if (message === undefined) this.ended = true;
    else if (typeof message === 'string') this.lines.push(Buffer.from(message, 'latin1').toString('utf8'));
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  get pid(): number {
    return this.proc.pid;
  }

  get exited(): Promise<number> {
    return this.proc.exited;
  }

  sendPlan(plan: Buffer): void {
    try {
      writeAll(this.planFd, plan);
    } catch (err) {
      // The helper is gone (it could not join the cgroup, say): its message, or the channel's end, says why.
      if (errnoCode(err) !== 'EPIPE') throw err;
    }
    closeSync(this.planFd);
  }

  /** The next message of the helper; `undefined` once the channel closed (the helper and the init closed it). */
  async next(): Promise<string | undefined> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        trace(`helper: ${line.slice(0, 40)}`);
        return line;
      }
      if (this.ended || this.closed) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  reply(text: string): void {
    try {
      writeAll(this.syncFd, Buffer.from(`${text}\n`));
    } catch {
      /* the helper is gone; its next message (or EOF) says why */
    }
  }

  /** Stops talking: the init keeps its end of the channel until it is created and then closes it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      closeSync(this.syncFd);
    } catch {
      /* already closed */
    }
  }

  kill(signal: number | string = 'SIGKILL'): void {
    try {
      this.proc.kill(signal);
    } catch {
      /* already gone */
    }
  }

  /**
   * Answers sync points until the message `until` and returns the init's pid: `created` for create; `end`, the
   * channel's end, for exec (an exec plan has no `created`: the sync fds stay open until the execve closes them),
   * which returns 0 if no pid came. A helper error is thrown as a HelperStepError.
   */
  async converse(until: 'created' | 'end', onSync: (name: string, pid: number) => string | undefined): Promise<number> {
    for (;;) {
      const line = await this.next();
      if (line === undefined) {
        if (until === 'end') return this.initPid;
        throw new PocrunError('the container init exited before it was created');
      }
      const message = parseHelperMessage(line);
      if (message.kind === 'pid') {
        this.initPid = message.pid;
      } else if (message.kind === 'sync') {
        let payload: string | undefined;
        try {
          // Before a `pid` line (`--new-userns`'s `sync maps`) the one asking is the helper itself.
          payload = onSync(message.name, this.initPid || this.pid);
        } catch (err) {
          this.reply('abort');
          throw err;
        }
        this.reply(payload === undefined ? 'ok' : `ok ${payload}`);
      } else if (message.kind === 'created') {
        if (until === 'created') return this.initPid;
      } else if (message.kind === 'error') {
        throw message.error;
      }
    }
  }
}

export function bunRuntime(): BunRuntime {
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (!bun) throw new PocrunError('pocrun runs as the compiled binary (dist/pocrun); under Node it cannot start containers');
  return bun;
}

function writeAll(fd: number, data: Buffer): void {
  let rest = data;
  while (rest.length > 0) {
    try {
      rest = rest.subarray(writeSync(fd, rest));
    } catch (err) {
      if (errnoCode(err) !== 'EAGAIN') throw err;
      sleepMs(0.1);
    }
  }
}

/** One message of the helper on sync-out (PROTOCOL.md, "Messages from the helper"). */
export type HelperMessage =
  | { kind: 'pid'; pid: number }
  | { kind: 'sync'; name: string }
  | { kind: 'created' }
  | { kind: 'error'; error: HelperStepError }
  | { kind: 'unknown'; line: string };

/** The one parser of the helper's lines: create's, exec's and the device filter's. */
export function parseHelperMessage(line: string): HelperMessage {
  const space = line.indexOf(' ');
  const word = space < 0 ? line : line.slice(0, space);
  const arg = space < 0 ? '' : line.slice(space + 1);
  if (word === 'pid') return { kind: 'pid', pid: Number(arg) };
  if (word === 'sync') return { kind: 'sync', name: arg };
  if (word === 'created') return { kind: 'created' };
  if (word === 'error') {
    const [step = '?', ref = '-', errno = '0', ...message] = arg.split('\t');
    return { kind: 'error', error: new HelperStepError(step, ref, Number(errno), message.join('\t')) };
  }
  return { kind: 'unknown', line };
}

/**
 * A step of the helper failed (`error <step>\t<ref>\t<errno>\t<message>`), worded for the user as
 * `<what the step was for> (<document> <ref>): <message>`; the step, the config field and the errno stay
 * fields, so that a caller can move the field to the document it came from (exec: process.json) without
 * reading the message.
 */
export class HelperStepError extends PocrunError {
  constructor(
    readonly step: string,
    readonly ref: string,
    readonly errno: number,
    readonly detail: string,
    readonly document = 'config.json',
  ) {
    const where = ref && ref !== '-' ? ` (${document} ${ref})` : '';
    // The executable's message already reads like runc's: `exec: "foo": executable file not found in $PATH`.
    super(step === 'exec' ? `${detail}${where}` : `${stepPurpose(step)}${where}: ${detail}`);
  }

  /** The same error with a ref under `prefix` re-rooted in `document`; any other is returned as it is. */
  movedUnder(prefix: string, document: string): HelperStepError {
    const rest = pointerUnder(this.ref, prefix);
    return rest === undefined ? this : new HelperStepError(this.step, rest, this.errno, this.detail, document);
  }
}
