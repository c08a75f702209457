import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Socket } from 'node:net';
import { PocError } from '../errors.js';

/** Where pocrun-init lives: beside the pocrun binary, or where POCRUN_INIT says (tests, development). */
export function helperPath(): string {
  const path = process.env.POCRUN_INIT ?? join(dirname(process.execPath), 'pocrun-init');
  if (!existsSync(path)) throw new PocError(`the helper ${path} is missing: run "npm run build" (or set POCRUN_INIT)`);
  return path;
}

export interface HelperSession {
  helper: ChildProcess;
  /** The container init's pid, as the runtime sees it. */
  pid: number;
}

export interface HelperOptions {
  plan: Buffer;
  preserveFds: number;
  /** Answers a `sync <name>` of the child: the reply's payload (state JSON) or undefined for a bare ok. */
  onSync: (name: string, pid: number) => Promise<string | undefined> | string | undefined;
  /** Put the helper in its own process group (run in the foreground forwards signals itself). */
  ownProcessGroup?: boolean;
  /** Which message ends the session: `created` for create, `pid` for exec. */
  until: 'created' | 'pid';
}

/**
 * Runs pocrun-init with the plan and plays the runtime's side of the sync protocol (src/plan/PROTOCOL.md).
 * Resolves once the container init reports `created`; rejects with the helper's error, worded for the user.
 */
export function startHelper(opts: HelperOptions): Promise<HelperSession> {
  const preserved = Array.from({ length: opts.preserveFds }, (_, i) => 3 + i);
  const planFd = 3 + opts.preserveFds;
  const syncFd = planFd + 1;
  const stdio: StdioOptions = ['inherit', 'inherit', 'inherit', ...preserved, 'pipe', 'pipe'];
  const helper = spawn(helperPath(), [String(planFd), String(syncFd), String(syncFd)], {
    stdio,
    detached: opts.ownProcessGroup ?? false,
  });
  const planSocket = helper.stdio[planFd] as Socket;
  const sync = helper.stdio[syncFd] as Socket;
  planSocket.on('error', () => {});
  planSocket.end(opts.plan);

  return new Promise<HelperSession>((resolve, reject) => {
    let pid = 0;
    let buffered = '';
    let settled = false;
    let failure: PocError | undefined;
    const finish = (err?: PocError) => {
      if (settled) return;
      settled = true;
      sync.removeAllListeners('data');
      if (err) {
        sync.destroy();
        reject(Object.assign(err, { initPid: pid, helper }));
      } else {
        sync.destroy();
        resolve({ helper, pid });
      }
    };
    const handle = async (line: string) => {
      const [word, ...rest] = line.split(' ');
      const arg = rest.join(' ');
      if (word === 'pid') {
        pid = Number(arg);
        if (opts.until === 'pid') finish();
      } else if (word === 'sync') {
        try {
          const payload = await opts.onSync(arg, pid);
          sync.write(payload === undefined ? 'ok\n' : `ok ${payload}\n`);
        } catch (err) {
          sync.write('abort\n');
          failure = err instanceof PocError ? err : new PocError(String(err));
          finish(failure);
        }
      } else if (word === 'created') {
        finish();
      } else if (word === 'error') {
        failure = helperError(arg);
        finish(failure);
      }
    };
    let queue = Promise.resolve();
    sync.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        queue = queue.then(() => handle(line));
      }
    });
    sync.on('error', () => {});
    sync.on('close', () => {
      queue.then(() => finish(failure ?? new PocError('the container init exited before it was created')));
    });
    helper.on('error', (err) => finish(new PocError(`cannot run the helper ${helperPath()}: ${err.message}`)));
  });
}

/** What each step is for, so that the message names the purpose and the config field. */
const STEP_PURPOSE: Record<string, string> = {
  setns: 'join namespace', 'cgroup-join': 'join cgroup', 'exec-fifo': 'make exec.fifo', 'console-connect': 'connect console socket',
  clone: 'create namespaces', rootfs: 'prepare rootfs', mount: 'mount', setattr: 'set mount attributes',
  propagation: 'set mount propagation', remount: 'remount', mknod: 'create device', 'bind-dev': 'bind device',
  symlink: 'create symlink', 'run-hooks': 'run hook', 'pivot-root': 'pivot_root', chroot: 'chroot', mask: 'mask path',
  readonly: 'make path read-only', 'remount-root': 'make rootfs read-only', sysctl: 'set sysctl', hostname: 'set hostname',
  domainname: 'set domainname', 'oom-score-adj': 'set oom_score_adj', rlimit: 'set rlimit', console: 'set up console',
  chdir: 'change to cwd', umask: 'set umask', groups: 'set additional groups', user: 'set user', caps: 'set capabilities',
  'no-new-privs': 'set no_new_privs', seccomp: 'load seccomp filter', exec: 'find executable', 'wait-start': 'wait for start',
};

export function helperError(text: string): PocError {
  const [step = '?', ref = '-', errno = '0', ...message] = text.split('\t');
  const purpose = STEP_PURPOSE[step] ?? step;
  const where = ref && ref !== '-' ? ` (config.json ${ref})` : '';
  const err = new PocError(`${purpose}${where}: ${message.join('\t')}`);
  return Object.assign(err, { step, errno: Number(errno) });
}
