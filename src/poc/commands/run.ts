/**
 * `poc run [flags] IMAGE [CMD...]`: create and start. Detached (-d) it prints the id and returns once the
 * container runs; otherwise the monitor shares poc's terminal and poc exits with the container's status,
 * forwarding signals (and window size changes) to the monitor, which passes them on to the container. In the
 * foreground poc does the cleanup of the exit itself (the monitor's `poc cleanup`, without a second process).
 */
import { stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { createContainer } from '../containers/provision.js';
import type { ContainerOptions, RunFlags } from '../containers/options.js';
import type { ContainerFile } from '../containers/container-files.js';
import { startContainer } from '../containers/start.js';
import { cleanupContainer, removeContainer } from '../containers/stop.js';
import type { RootOptions } from '../poc-root.js';
import { forwardSignals } from '../../vocabulary/signals.js';
import { checkStdinTerminal } from '../containers/stdin-terminal.js';

export interface RunCommandOptions extends RootOptions {
  flags: RunFlags;
  /** What a flag cannot say (poc compose run: the service's entrypoint, health check, networks). */
  overrides?: Partial<ContainerOptions>;
  /** Files given whole (poc compose run: the service's secrets and configs). */
  files?: readonly ContainerFile[];
}

export async function runCommand(o: RunCommandOptions): Promise<number> {
  checkStdinTerminal(o.flags);
  const c = await createContainer(o.flags, o, o.overrides, o.files);
  let started;
  try {
    started = await startContainer(c, { ...o, foreground: !o.flags.detach });
  } catch (err) {
    // A container that never ran is not left behind.
    await removeContainer(c, { ...o, force: true }).catch(() => {});
    throw err;
  }
  if (!started) throw new PocError(`container ${c.name} did not start`);
  if (o.flags.detach) {
    stdout(`${c.id}\n`);
    return 0;
  }
  // Forwarded until the monitor is gone: a ^C during the cleanup must not leave it half done.
  const stopForwarding = forwardSignals(() => started);
  try {
    return await started.finish(() => cleanupContainer(c.id, o));
  } finally {
    stopForwarding();
  }
}
