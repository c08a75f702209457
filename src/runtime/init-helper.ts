import { closeSync, existsSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PocError, errnoCode } from '../errors.js';
import { sleepMs } from './proc.js';
import { trace } from './trace.js';

/** Where pocrun-init lives: beside the pocrun binary, or where POCRUN_INIT says (tests, development). */
export function helperPath(): string {
  const path = process.env.POCRUN_INIT ?? join(dirname(process.execPath), 'pocrun-init');
  if (!existsSync(path)) throw new PocError(`the helper ${path} is missing: run "npm run build" (or set POCRUN_INIT)`);
  return path;
}

interface BunSubprocess {
  pid: number;
  stdio: (number | null | undefined)[];
  exited: Promise<number>;
  exitCode: number | null;
  signalCode: string | null;
  kill(signal?: number | string): void;
}

interface BunRuntime {
  file(fd: number): { stream(): ReadableStream<Uint8Array> };
  spawn(cmd: string[], opts: { stdio: (string | number)[]; detached?: boolean; env?: Record<string, string | undefined> }): BunSubprocess;
}

/**
 * A running pocrun-init and the runtime's side of the sync protocol (src/plan/PROTOCOL.md). The protocol is
 * strictly question and answer, so it is driven synchronously: the runtime has nothing else to do meanwhile.
 */
export class HelperSession {
  private buffered = '';
  private closed = false;
  private reader?: ReadableStreamDefaultReader<Uint8Array>;
  /** The container init's pid once the helper reported it. */
  initPid = 0;

  private constructor(
    private readonly proc: BunSubprocess,
    private readonly planFd: number,
    private readonly syncFd: number,
  ) {}

  /**
   * Starts the helper; it waits for its plan, so the caller can prepare the cgroup meanwhile. Bun.spawn, not
   * node:child_process: the latter costs ~6 ms per spawn in the Bun binary, Bun.spawn ~0.6 ms.
   */
  static spawn(opts: { preserveFds: number; ownProcessGroup?: boolean }): HelperSession {
    const bun = bunRuntime();
    const preserved = Array.from({ length: opts.preserveFds }, (_, i) => 3 + i);
    const planIndex = 3 + opts.preserveFds;
    const syncIndex = planIndex + 1;
    let proc: BunSubprocess;
    try {
      proc = bun.spawn([helperPath(), String(planIndex), String(syncIndex), String(syncIndex)], {
        stdio: ['inherit', 'inherit', 'inherit', ...preserved, 'pipe', 'pipe'],
        detached: opts.ownProcessGroup ?? false,
      });
    } catch (err) {
      throw new PocError(`cannot run the helper ${helperPath()}: ${(err as Error).message}`);
    }
    trace('helper spawned');
    return new HelperSession(proc, proc.stdio[planIndex] as number, proc.stdio[syncIndex] as number);
  }

  get pid(): number {
    return this.proc.pid;
  }

  get exited(): Promise<number> {
    return this.proc.exited;
  }

  sendPlan(plan: Buffer): void {
    writeAll(this.planFd, plan);
    closeSync(this.planFd);
  }

  /**
   * The next message of the helper; `undefined` once every writer closed its end. Bun hands out the socket
   * non-blocking (and Node has no fcntl), so it is read as a stream: the wait is in the event loop, costing no
   * CPU, which matters when fifty containers are created at once.
   */
  async next(): Promise<string | undefined> {
    for (;;) {
      const nl = this.buffered.indexOf('\n');
      if (nl >= 0) {
        const line = this.buffered.slice(0, nl);
        this.buffered = this.buffered.slice(nl + 1);
        trace(`helper: ${line.slice(0, 40)}`);
        return line;
      }
      if (this.closed) return undefined;
      this.reader ??= bunRuntime().file(this.syncFd).stream().getReader();
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await this.reader.read();
      } catch {
        chunk = { done: true, value: undefined };
      }
      if (chunk.done) this.closed = true;
      else this.buffered += Buffer.from(chunk.value).toString('utf8');
    }
  }

  reply(text: string): void {
    try {
      writeAll(this.syncFd, Buffer.from(`${text}\n`));
    } catch {
      /* the helper is gone; its next message (or EOF) says why */
    }
  }

  /** Stops talking: the init keeps its end until it is created and then closes it. */
  close(): void {
    if (this.closed && !this.reader) return;
    this.closed = true;
    void this.reader?.cancel().catch(() => {});
    this.reader = undefined;
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
   * Answers sync points until the message `until` (`created` for create, `pid` for exec) and returns the init's
   * pid. A helper error becomes a PocError worded for the user.
   */
  async converse(until: 'created' | 'pid', onSync: (name: string, pid: number) => string | undefined): Promise<number> {
    for (;;) {
      const line = await this.next();
      if (line === undefined) throw new PocError('the container init exited before it was created');
      const space = line.indexOf(' ');
      const word = space < 0 ? line : line.slice(0, space);
      const arg = space < 0 ? '' : line.slice(space + 1);
      if (word === 'pid') {
        this.initPid = Number(arg);
        if (until === 'pid') return this.initPid;
      } else if (word === 'sync') {
        let payload: string | undefined;
        try {
          payload = onSync(arg, this.initPid);
        } catch (err) {
          this.reply('abort');
          throw err;
        }
        this.reply(payload === undefined ? 'ok' : `ok ${payload}`);
      } else if (word === 'created') {
        if (until === 'created') return this.initPid;
      } else if (word === 'error') {
        throw helperError(arg);
      }
    }
  }
}

function bunRuntime(): BunRuntime {
  const bun = (globalThis as { Bun?: BunRuntime }).Bun;
  if (!bun) throw new PocError('pocrun runs as the compiled binary (dist/pocrun); under Node it cannot start containers');
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

/** What each step is for, so that the message names the purpose and the config field. */
const STEP_PURPOSE: Record<string, string> = {
  setns: 'join namespace', 'exec-fifo': 'make exec.fifo', 'console-connect': 'connect console socket',
  'cgroup-join': 'join cgroup', clone: 'create namespaces', rootfs: 'prepare rootfs', mount: 'mount',
  setattr: 'set mount attributes', propagation: 'set mount propagation', remount: 'remount', mknod: 'create device',
  'bind-dev': 'bind device', symlink: 'create symlink', 'run-hooks': 'run hook', 'pivot-root': 'pivot_root',
  chroot: 'chroot', mask: 'mask path', readonly: 'make path read-only', 'remount-root': 'make rootfs read-only',
  sysctl: 'set sysctl', hostname: 'set hostname', domainname: 'set domainname', 'oom-score-adj': 'set oom_score_adj',
  rlimit: 'set rlimit', console: 'set up console', chdir: 'change to cwd', umask: 'set umask',
  groups: 'set additional groups', user: 'set user', caps: 'set capabilities', 'no-new-privs': 'set no_new_privs',
  'wait-start': 'wait for start', 'time-offset': 'set time namespace offset', scheduler: 'set scheduler',
  ioprio: 'set I/O priority', personality: 'set personality', apparmor: 'apply AppArmor profile',
  selinux: 'apply SELinux label', 'seccomp-listener': 'connect to seccomp agent', 'seccomp-init': 'build seccomp filter',
  'seccomp-arch': 'build seccomp filter', 'seccomp-rule': 'build seccomp filter', 'seccomp-compile': 'build seccomp filter',
  'seccomp-load': 'load seccomp filter',
};

export function helperError(text: string): PocError {
  const [step = '?', ref = '-', errno = '0', ...message] = text.split('\t');
  const where = ref && ref !== '-' ? ` (config.json ${ref})` : '';
  // The executable's message already reads like runc's: `exec: "foo": executable file not found in $PATH`.
  const purpose = step === 'exec' ? '' : `${STEP_PURPOSE[step] ?? step}${where}: `;
  const err = new PocError(`${purpose}${message.join('\t')}${step === 'exec' ? where : ''}`);
  return Object.assign(err, { step, errno: Number(errno) });
}
