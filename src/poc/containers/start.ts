/**
 * `poc start` (and the second half of `poc run`): start the monitor, which mounts the rootfs and runs `pocrun
 * create` (whose createRuntime hook wires the network) and `pocrun start`, and record the run. If anything fails,
 * what this start made is undone: runtime state, network wiring, the mount.
 */
import { rmSync } from 'node:fs';
import { UserError, PocError } from '../errors.js';
import { imageRootfs } from '../images/image-store.js';
import { withLock, type RootOptions } from '../poc-root.js';
import { startMonitor, type StartedMonitor } from './monitor.js';
import { prepareRootfs, unmountRootfs } from './rootfs.js';
import { pocrun } from './runtime.js';
import { containerPaths, containerStatus, type ContainerRecord } from './container-store.js';

export interface StartOptions extends RootOptions {
  /** Share poc's stdio: `poc run` without -d. */
  foreground?: boolean;
  /** `poc start --checkpoint NAME`: restore the container from that checkpoint (checkpoint.ts). */
  checkpoint?: string;
}

export const containerLock = (id: string) => `container-${id.slice(0, 32)}`;

/** Polls until `done` or the timeout; returns whether it became true. */
export async function waitFor(done: () => boolean, timeoutMs: number, stepMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Undoes a start that failed half-way, or what a dead monitor left: every step is a no-op when not needed. */
export async function releaseRun(c: ContainerRecord, opts: RootOptions, release = false): Promise<void> {
  // As an engine cleans up: whatever is left of the container in the runtime (its processes, cgroup, state) goes
  // with `delete --force`, which succeeds for a container the runtime no longer knows (pocrun's front answers that
  // at once). Its failure (a lock held too long) is not this cleanup's to report: the next start or rm tries again.
  await pocrun(['delete', '--force', c.id], opts);
  // Rootless: the overlay lives in the monitor's own mount namespace, gone with it.
  if (c.options.rootless) return;
  if (c.options.network === 'bridge') {
    // The poststop hook has usually done it already; when removing, a failure must be heard (the address and
    // ports would stay reserved), otherwise the next start or rm tries again.
    const { teardownContainerNetwork } = await import('../network/container.js'); // loaded for the bridge only
    const teardown = teardownContainerNetwork({ ...opts, containerId: c.id, release });
    await (release ? teardown : teardown.catch(() => {}));
  }
  await unmountRootfs(containerPaths(c.id, opts).rootfs);
}

/** Starts a created or exited container; resolves once it runs (undefined when it was running already). */
export async function startContainer(c: ContainerRecord, opts: StartOptions = {}): Promise<StartedMonitor | undefined> {
  // The last run's monitor may still be cleaning up (under this container's lock): let it finish first.
  const before = containerStatus(c.id, opts);
  if (before.status === 'exited' && before.monitorAlive) await waitMonitorGone(c, opts, 15_000);
  return withLock(
    containerLock(c.id),
    async () => {
      const paths = containerPaths(c.id, opts);
      const status = containerStatus(c.id, opts);
      if (status.status === 'running' || status.status === 'restarting') {
        if (opts.foreground) throw new PocError(`container ${c.name} is already running`);
        if (opts.checkpoint !== undefined) throw new PocError(`container ${c.name} is running: a checkpoint is restored into a stopped container`);
        return undefined;
      }
      if (status.status === 'exited') {
        // What the last run's monitor cleaned up, or would have if it died: done again, harmlessly.
        await releaseRun(c, opts);
        rmSync(paths.exit, { force: true });
        rmSync(paths.state, { force: true });
      }
      // A new start: the last stop no longer holds back the restart policy, and health starts over.
      for (const f of [paths.stopped, paths.health]) rmSync(f, { force: true });
      if (c.options.network === 'bridge' && !c.options.networks) {
        // The default network's reservation again (dropped if `poc prune` removed the network meanwhile); a user
        // network's is kept from create or connect until rm or disconnect.
        const { allocateContainerNetwork } = await import('../network/container.js'); // loaded for the bridge only
        await allocateContainerNetwork({ ...opts, containerId: c.id, hostname: c.hostname, publish: c.options.publish });
      }
      let restore: { dir: string; flags: string[] } | undefined;
      if (opts.checkpoint !== undefined) {
        const { checkpointDir, networkCriuFlags } = await import('./checkpoint.js');
        restore = { dir: checkpointDir(c, opts.checkpoint, opts, true), flags: ['--file-locks', ...networkCriuFlags(c)] };
      }
      let started: StartedMonitor;
      try {
        const overlay = await prepareRootfs({ lower: imageRootfs(c.image, opts), upper: paths.upper, work: paths.work, target: paths.rootfs, rootless: c.options.rootless !== undefined });
        started = await startMonitor(c, { ...opts, foreground: opts.foreground ?? false, overlay, ...(restore ? { restore } : {}) });
      } catch (err) {
        await releaseRun(c, opts);
        throw err instanceof UserError ? err.wrap(`start container ${c.name}`) : err;
      }
      // state.json is the monitor's: it wrote it before it reported the start, and writes it at every restart.
      return started;
    },
    opts,
  );
}

/** Waits until a container's monitor is gone (its cleanup done); false on timeout. */
export async function waitMonitorGone(c: ContainerRecord, opts: RootOptions, timeoutMs: number): Promise<boolean> {
  return waitFor(() => {
    const s = containerStatus(c.id, opts);
    return !s.monitorAlive && s.status !== 'running';
  }, timeoutMs);
}
