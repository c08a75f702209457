/**
 * Starting a container's monitor (src/native/poc-monitor.c): it mounts the rootfs and runs `pocrun create` and
 * `pocrun start`, then reports `ok <pid>` or `error <message>` on fd 3, which is all poc waits for. Detached, its
 * stdio is /dev/null and it outlives poc; in the foreground it shares poc's stdio, reports `exit <status>` when
 * the container has exited and leaves the cleanup to poc, which is waiting anyway (`finish`). Either way it runs
 * in its own session, so that only the signals poc forwards reach it.
 */
import { closeSync, existsSync, mkdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PocError } from '../errors.js';
import { spawnProgram, socketLines } from '../spawn.js';
import { pocPaths, shortId, type RootOptions } from '../poc-root.js';
import { binaries, childEnv } from './runtime.js';
import { containerPaths, runtimeRoot, type ContainerRecord } from './container-store.js';
import { restartMonitorArgs } from './restart.js';
import { healthMonitorArgs } from './health.js';
import { pastaPlan } from '../network/pasta.js';

export interface MonitorOptions extends RootOptions {
  foreground: boolean;
  /** The overlayfs options of the rootfs, which the monitor mounts (see rootfs.ts). */
  overlay: string;
  /** Restore from this checkpoint (`pocrun restore` with these flags) instead of create and start. */
  restore?: { dir: string; flags: string[] };
}

export interface StartedMonitor {
  /** The container init's pid. */
  pid: number;
  monitorPid: number;
  /** Passes a signal to the monitor, which passes it on to the container. */
  kill(signal: NodeJS.Signals): void;
  /**
   * In the foreground: waits until the container has exited, runs `cleanup` (the monitor waits for it), and
   * resolves with the container's status once the monitor is gone. A monitor that ends without reporting the
   * exit (killed) leaves the cleanup to `poc rm`, as a detached one would.
   */
  finish(cleanup: () => Promise<void>): Promise<number>;
}

/** sun_path holds 108 bytes: a long POC_ROOT gets its console sockets in /tmp. */
export function consoleSocketPath(stem: string, opts: RootOptions = {}): string {
  const dir = join(pocPaths(opts).run, 'sock');
  const path = join(dir, `${stem}.sock`);
  if (path.length < 100) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return path;
  }
  return join('/tmp', `poc-${stem}.sock`);
}

/** A program in PATH, or an error naming the package that has it. */
export function findProgram(name: string, pkg: string): string {
  for (const dir of (process.env.PATH || '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new PocError(`${name} is not installed (Debian package ${pkg}), which a rootless container needs${name === 'slirp4netns' || name === 'pasta' ? ' for its network (or use --network none)' : ''}`);
}

/**
 * fuse-overlayfs for a rootless rootfs: always when POC_OVERLAY_MOUNT_PROGRAM names it (as storage.conf's
 * mount_program does for podman), else where the kernel refuses overlayfs in a user namespace (before 5.11) and
 * fuse-overlayfs is installed.
 */
function mountProgramArgs(env: NodeJS.ProcessEnv): string[] {
  if (env.POC_OVERLAY_MOUNT_PROGRAM) return ['--mount-program', env.POC_OVERLAY_MOUNT_PROGRAM, '--mount-program-only'];
  try {
    return ['--mount-program', findProgram('fuse-overlayfs', 'fuse-overlayfs')];
  } catch {
    return [];
  }
}

/** The monitor's argv (pure, but for the paths it is given). */
export function monitorArgs(
  c: ContainerRecord,
  o: {
    pocrun: string; poc: string; runtimeRoot: string; overlay: string; consoleSocket?: string; foreground: boolean;
    /** Rootless with slirp4netns: its program and API socket. */
    slirp?: { path: string; apiSocket: string };
    /** Rootless with pasta: its program (its arguments are planned from the record: network/pasta.ts). */
    pasta?: string;
    /** Restore from this checkpoint (`pocrun restore` with these flags) instead of create and start. */
    restore?: { dir: string; flags: string[] };
  },
  opts: RootOptions,
): string[] {
  const p = containerPaths(c.id, opts);
  const args = [
    '--runtime', o.pocrun, '--root', o.runtimeRoot, '--id', c.id, '--bundle', p.dir, '--log', p.log,
    '--exit-file', p.exit, '--pid-file', p.pidFile, '--sync-fd', '3', '--rootfs', p.rootfs, '--overlay', o.overlay,
  ];
  if (c.options.tty) args.push('--tty', '--console-socket', o.consoleSocket!);
  if (c.options.interactive && o.foreground) args.push('--stdin');
  if (o.foreground) args.push('--foreground');
  if (c.options.cgroup?.manager === 'systemd') args.push('--systemd-cgroup');
  if (o.slirp) {
    args.push('--slirp4netns', o.slirp.path, '--api-socket', o.slirp.apiSocket);
    if (c.options.rootless?.allowHostLoopback) args.push('--allow-host-loopback');
    for (const p of c.options.publish) args.push('--publish', `${p.protocol}:${p.hostIp ?? '0.0.0.0'}:${p.hostPort}:${p.containerPort}`);
  }
  if (o.pasta) {
    args.push('--pasta', o.pasta);
    for (const a of pastaPlan(c.options.rootless?.pastaOptions ?? [], c.options.publish).args) args.push(`--pasta-arg=${a}`);
  }
  if (o.restore) args.push('--restore', o.restore.dir, ...o.restore.flags.flatMap((f) => ['--restore-flag', f]));
  args.push('--state-file', p.state, '--stop-file', p.stopped, ...restartMonitorArgs(c.options.restart), ...healthMonitorArgs(c.healthcheck, p.health));
  args.push('--', o.poc, 'cleanup', c.id);
  return args;
}

export async function startMonitor(c: ContainerRecord, opts: MonitorOptions): Promise<StartedMonitor> {
  const b = binaries();
  const rootless = c.options.rootless !== undefined;
  const args = monitorArgs(
    c,
    {
      pocrun: b.pocrun, poc: b.poc, runtimeRoot: runtimeRoot(opts), overlay: opts.overlay, foreground: opts.foreground,
      ...(opts.restore ? { restore: opts.restore } : {}),
      ...(c.options.tty ? { consoleSocket: consoleSocketPath(shortId(c.id), opts) } : {}),
      ...(rootless && c.options.network === 'slirp4netns' ? { slirp: { path: findProgram('slirp4netns', 'slirp4netns'), apiSocket: consoleSocketPath(`${shortId(c.id)}-slirp`, opts) } } : {}),
      ...(rootless && c.options.network === 'pasta' ? { pasta: findProgram('pasta', 'passt') } : {}),
    },
    opts,
  );
  let argv = [b.monitor, ...args];
  let env = childEnv(opts);
  if (rootless) {
    // The monitor is root of poc's user namespace, in a mount namespace of its own: it mounts the overlay there,
    // and pocrun, run by it, is rootless (root in a user namespace), as under rootless podman's conmon.
    const { inUserns, usernsEnv } = await import('../userns.js');
    argv = [...argv.slice(0, 1), ...mountProgramArgs(process.env), ...argv.slice(1)];
    argv = inUserns(argv, { mount: true });
    env = usernsEnv(env, pocPaths(opts).run);
  }
  const monitor = spawnProgram(argv, {
    stdio: opts.foreground ? ['inherit', 'inherit', 'inherit', 'pipe'] : ['ignore', 'ignore', 'ignore', 'pipe'],
    detached: true,
    env,
  });
  const syncFd = monitor.stdio[3] as number;
  const lines = socketLines(syncFd);
  const hangUp = () => {
    void lines.return(undefined);
    try {
      closeSync(syncFd);
    } catch {
      // closed already
    }
  };
  const first = await lines.next();
  if (first.done) {
    hangUp();
    throw new PocError(`the monitor exited (status ${await monitor.exited}) before the container started`);
  }
  if (!first.value.startsWith('ok ')) {
    hangUp();
    // After an error the monitor exits at once (poc cleans up): reaped here, so that no part of it outlives the
    // failed command (a rootless one is the user's process). Bounded, should it hang.
    await Promise.race([monitor.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
    throw new PocError(first.value.replace(/^error /, ''));
  }
  if (!opts.foreground) {
    hangUp();
    monitor.unref();
  }
  return {
    pid: Number(first.value.slice(3)),
    monitorPid: monitor.pid,
    kill: (signal) => {
      try {
        monitor.kill(signal);
      } catch {
        // gone already
      }
    },
    finish: async (cleanup) => {
      try {
        const report = await lines.next();
        if (!report.done && /^exit \d+$/.test(report.value)) {
          try {
            await cleanup();
          } finally {
            try {
              writeSync(syncFd, 'done\n');
            } catch {
              // the monitor is gone
            }
          }
        }
      } finally {
        hangUp();
      }
      return monitor.exited;
    },
  };
}
