/**
 * Starting a container's monitor (src/native/poc-monitor.c): it runs `pocrun create` and `pocrun start`, then
 * reports `ok <pid>` or `error <message>` on fd 3, which is all poc waits for. Detached, its stdio is /dev/null
 * and it outlives poc; in the foreground it shares poc's stdio and poc waits for its exit status, which is the
 * container's. Either way it runs in its own session, so that only the signals poc forwards reach it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PocError } from '../../errors.js';
import { pocPaths, shortId, type RootOptions } from '../store.js';
import { binaries, childEnv } from './runtime.js';
import { containerPaths, runtimeRoot, type ContainerRecord } from './store.js';

export interface MonitorOptions extends RootOptions {
  foreground: boolean;
}

export interface StartedMonitor {
  monitor: ChildProcess;
  /** The container init's pid. */
  pid: number;
  /** Resolves with the monitor's exit status (the container's, in the foreground). */
  exited: Promise<number>;
}

/** sun_path holds 108 bytes: a long POC_ROOT gets its console sockets in /tmp. */
export function consoleSocketPath(stem: string, opts: RootOptions = {}): string {
  const dir = join(pocPaths(opts).root, 'sock');
  const path = join(dir, `${stem}.sock`);
  if (path.length < 100) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return path;
  }
  return join('/tmp', `poc-${stem}.sock`);
}

/** The monitor's argv (pure, but for the paths it is given). */
export function monitorArgs(c: ContainerRecord, o: { pocrun: string; poc: string; runtimeRoot: string; consoleSocket?: string; foreground: boolean }, opts: RootOptions): string[] {
  const p = containerPaths(c.id, opts);
  const args = [
    '--runtime', o.pocrun, '--root', o.runtimeRoot, '--id', c.id, '--bundle', p.dir, '--log', p.log,
    '--exit-file', p.exit, '--pid-file', p.pidFile, '--sync-fd', '3',
  ];
  if (c.options.tty) args.push('--tty', '--console-socket', o.consoleSocket!);
  if (c.options.interactive && o.foreground) args.push('--stdin');
  if (o.foreground) args.push('--foreground');
  args.push('--', o.poc, 'cleanup', c.id);
  return args;
}

export function startMonitor(c: ContainerRecord, opts: MonitorOptions): Promise<StartedMonitor> {
  const b = binaries();
  const args = monitorArgs(
    c,
    { pocrun: b.pocrun, poc: b.poc, runtimeRoot: runtimeRoot(opts), foreground: opts.foreground, ...(c.options.tty ? { consoleSocket: consoleSocketPath(shortId(c.id), opts) } : {}) },
    opts,
  );
  const stdio = opts.foreground
    ? (['inherit', 'inherit', 'inherit', 'pipe'] as const)
    : (['ignore', 'ignore', 'ignore', 'pipe'] as const);
  const monitor = spawn(b.monitor, args, { stdio: [...stdio], detached: true, env: childEnv(opts) });
  const exited = new Promise<number>((resolve) => {
    monitor.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (osSignal(signal) ?? 0) : 1)));
  });
  const sync = monitor.stdio[3] as Readable;
  return new Promise((resolve, reject) => {
    let text = '';
    let done = false;
    const finish = () => {
      if (done) return;
      const nl = text.indexOf('\n');
      if (nl < 0) return;
      done = true;
      const line = text.slice(0, nl);
      sync.destroy();
      if (line.startsWith('ok ')) {
        if (!opts.foreground) monitor.unref();
        resolve({ monitor, pid: Number(line.slice(3)), exited });
      } else {
        reject(new PocError(line.replace(/^error /, '')));
      }
    };
    sync.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      finish();
    });
    sync.on('error', () => {});
    sync.on('close', () => {
      if (done) return;
      done = true;
      exited.then((code) => reject(new PocError(`the monitor exited (status ${code}) before the container started`)));
    });
    monitor.on('error', (err) => {
      if (!done) {
        done = true;
        reject(new PocError(`cannot run the monitor ${b.monitor}: ${err.message}`));
      }
    });
  });
}

function osSignal(name: NodeJS.Signals): number | undefined {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15 };
  return table[name];
}
