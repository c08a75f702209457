/**
 * `poc exec [-d] [-i] [-t] [-e K=V] [-u USER] [-w DIR] CONTAINER CMD...`: `pocrun exec` in the container. With
 * -t the monitor binary relays the terminal (`poc-monitor --relay`): pocrun sends the pty master over a console
 * socket, which only C can receive. Signals are passed on; the exit status is the command's.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { PocError } from '../errors.js';
import { imageRootfs } from '../images/index.js';
import { resolveUser } from '../containers/bundle.js';
import { consoleSocketPath, findProgram } from '../containers/monitor.js';
import { binaries, childEnv } from '../containers/runtime.js';
import { containerPaths, containerStatus, resolveContainer, runtimeRoot, type ContainerRecord } from '../containers/container-store.js';
import { runningRootfs } from '../containers/rootfs.js';
import { parseEnvSetting } from '../containers/options.js';
import { checkStdinTerminal } from '../containers/stdin-terminal.js';
import type { RootOptions } from '../poc-root.js';
import { idFilesIn } from '../root-path.js';
import { forwardSignals } from '../../vocabulary/signals.js';

export interface ExecCommandOptions extends RootOptions {
  ref: string;
  command: string[];
  detach: boolean;
  interactive: boolean;
  tty: boolean;
  env: string[];
  user?: string;
  workdir?: string;
}

/** pocrun exec's arguments (pure but for the user lookup, which the caller does). */
export function execArgs(o: ExecCommandOptions & { id: string; uidGid?: string; consoleSocket?: string }): string[] {
  const args = ['exec'];
  if (o.detach) args.push('--detach');
  if (o.tty) args.push('--tty', '--console-socket', o.consoleSocket!);
  if (o.workdir !== undefined) args.push('--cwd', o.workdir);
  for (const e of o.env) args.push('--env', e);
  if (o.uidGid !== undefined) args.push('--user', o.uidGid);
  args.push(o.id, '--', ...o.command);
  return args;
}

/**
 * The root whose /etc/passwd and /etc/group `exec --user` reads: the running container's, as docker's and
 * podman's exec read them, so a user the container added is found. readTextInRoot keeps its links inside it, and
 * a link swapped in meanwhile is refused. Rootless with fuse-overlayfs, the kernel refuses every process outside
 * the user namespace the FUSE mount was made in, allow_other or not (fuse_allow_current_process): the image's
 * files are all poc can read then, and a user the container added is not found.
 */
function userDatabaseRoot(c: ContainerRecord, monitorPid: number, o: RootOptions): string {
  const root = runningRootfs(containerPaths(c.id, o).rootfs, Boolean(c.options.rootless), monitorPid);
  try {
    accessSync(root, constants.X_OK);
    return root;
  } catch {
    return imageRootfs(c.image, o);
  }
}

export async function execCommand(o: ExecCommandOptions): Promise<number> {
  const c = resolveContainer(o.ref, o);
  // After the lookup, as docker's: no such container is the first thing said.
  checkStdinTerminal(o);
  const status = containerStatus(c.id, o);
  if (status.status !== 'running') throw new PocError(`container ${c.name} is not running`);
  if (o.workdir !== undefined && !o.workdir.startsWith('/')) throw new PocError(`exec: invalid -w ${JSON.stringify(o.workdir)}: the working directory must be absolute`);
  const env = o.env.map((e) => parseEnvSetting(e, process.env, 'exec -e')).filter((e): e is string => e !== undefined);
  let uidGid: string | undefined;
  if (o.user !== undefined) {
    const ids = idFilesIn(userDatabaseRoot(c, status.run!.monitorPid, o));
    const u = resolveUser(o.user, ids.passwd, ids.group);
    uidGid = `${u.uid}:${u.gid}`;
  }
  const b = binaries();
  const tty = o.tty && !o.detach;
  const consoleSocket = tty ? consoleSocketPath(`exec-${process.pid}`, o) : undefined;
  // Rootless, the container lives in its monitor's user namespace, which pocrun enters first (as root there, as
  // `podman exec` runs its runtime in its own): from outside it could not join the container's other namespaces.
  const userns = c.options.rootless && status.pid ? [findProgram('nsenter', 'util-linux'), '--user', '--target', String(status.pid), '--'] : [];
  const runtime = [...userns, b.pocrun, '--root', runtimeRoot(o), ...execArgs({ ...o, env, tty, id: c.id, ...(uidGid ? { uidGid } : {}), ...(consoleSocket ? { consoleSocket } : {}) })];
  const [file, args] = tty
    ? [b.monitor, ['--relay', '--console-socket', consoleSocket!, ...(o.interactive ? ['--stdin'] : []), '--', ...runtime]]
    : [runtime[0]!, runtime.slice(1)];
  const child = spawn(file, args, {
    stdio: [o.interactive && !o.detach ? 'inherit' : 'ignore', o.detach ? 'ignore' : 'inherit', 'inherit'],
    detached: true, // its own session: only the signals we pass on reach it
    env: childEnv(o),
  });
  const stopForwarding = forwardSignals(() => ({
    kill: (signal: NodeJS.Signals) => {
      try {
        child.kill(signal);
      } catch {
        // gone
      }
    },
  }));
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', (err) => reject(new PocError(`exec: cannot run ${file}: ${err.message}`)));
      child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 128)));
    });
  } finally {
    stopForwarding();
  }
}
