import { killQuietly, sleepMs } from '../common/proc.js';
import { initAlive } from './status.js';
import type { ContainerRecord } from './state-store.js';
import type { RuntimeContext } from './context.js';
import { trace } from './trace.js';

/**
 * Kills every process of a container and waits (briefly) until its init is gone: delete, before it removes the
 * cgroup, and start, when a poststart hook fails (the container then reads stopped). Through the cgroup first,
 * thawed (a frozen task dies only once thawed on cgroup v1), unless `cgroupGone` (create's clean-up after a
 * systemd scope that did not start); then the init itself (a container without a cgroup of its own, or one that
 * shares the pid namespace). A cgroup that goes meanwhile (systemd removes an emptied scope itself) is what was
 * wanted; another failure is a warning, not an error: what follows still runs.
 */
export function killContainerProcesses(ctx: RuntimeContext, record: ContainerRecord, opts: { cgroupGone?: boolean } = {}): void {
  const cgroups = ctx.cgroupsOf(record);
  // Read before the cgroup's kill: afterwards the init may be a zombie whose pid is about to be free. A record
  // without the init's start time (a restore that failed before it was known) is taken at its word.
  const alive = record.pid > 0 && (record.initStartTime === '' || initAlive(record));
  try {
    if (!opts.cgroupGone && cgroups.exists(record.cgroupPath)) {
      cgroups.thaw(record.cgroupPath);
      cgroups.killAll(record.cgroupPath, 'SIGKILL');
    }
  } catch (err) {
    // No warning for a cgroup that went: engines that show the runtime's last line (podman) would take it for the error.
    if (cgroups.exists(record.cgroupPath)) ctx.log('warning', `container "${record.id}": ${(err as Error).message}`);
  }
  trace('processes killed');
  if (!alive) return;
  killQuietly(record.pid);
  // The init's pid namespace dies with it; 2 s at most, so that the cgroup can be removed.
  for (let i = 0; i < 2000 && initAlive(record); i++) sleepMs(1);
  trace('init gone');
}
