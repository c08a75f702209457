/**
 * A container's cgroup, /poc/<id> (set in config.json by planBundle). pocrun delete removes it; when that could
 * not finish (a process still exiting under load, or a delete that found no state left), poc removes it itself,
 * so that no container leaves a cgroup behind.
 */
import { detectCgroups, resolveCgroupPath } from '../../cgroups/index.js';
import { sleepMs } from '../../runtime/proc.js';
import { PocError } from '../../errors.js';

export function containerCgroupPath(id: string): string {
  return resolveCgroupPath(`/poc/${id}`, id);
}

/** Kills what is left in the cgroup and removes it, retrying for up to `timeoutMs`. No error if it is gone. */
export function removeContainerCgroup(id: string, timeoutMs = 10_000): void {
  const driver = detectCgroups();
  const path = containerCgroupPath(id);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!driver.exists(path)) return;
    try {
      driver.killAll(path, 'SIGKILL');
    } catch {
      // frozen or half gone: the destroy below says what is wrong
    }
    try {
      driver.destroy(path);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err instanceof PocError ? err.wrap(`remove the cgroup of container ${id.slice(0, 12)}`) : err;
      sleepMs(50);
    }
  }
}
