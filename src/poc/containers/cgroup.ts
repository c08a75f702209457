/**
 * A container's cgroup: /poc/<id> (cgroupfs, below --cgroup-parent) or the systemd scope poc-<id>.scope in the
 * --cgroup-parent slice (machine.slice by default), set in config.json by planBundle. pocrun delete removes it;
 * when that could not finish (a process still exiting under load, or a delete that found no state left), poc
 * removes it itself, so that no container leaves a cgroup behind.
 */
import { detectCgroups, resolveCgroupPath } from '../../cgroups/index.js';
import { systemdUnitFor } from '../../cgroups/systemd-unit.js';
import { sleepMs } from '../../runtime/proc.js';
import { UserError } from '../errors.js';
import type { CgroupOptions } from './options.js';

/** Containers made before --cgroup-manager existed: cgroupfs under /poc. */
const LEGACY: CgroupOptions = { manager: 'cgroupfs', parent: '/poc' };

/** linux.cgroupsPath for the container: a cgroup path, or slice:poc:<id> for systemd (pocrun --systemd-cgroup). */
export function cgroupsPathOf(id: string, cgroup: CgroupOptions = LEGACY): string {
  return cgroup.manager === 'systemd' ? `${cgroup.parent}:poc:${id}` : `${cgroup.parent}/${id}`;
}

/** The container's cgroup below the hierarchy's root, where stats and top read it. */
export function containerCgroupPath(id: string, cgroup: CgroupOptions = LEGACY): string {
  const path = cgroupsPathOf(id, cgroup);
  return cgroup.manager === 'systemd' ? systemdUnitFor(path, id).cgroupPath : resolveCgroupPath(path, id);
}

/**
 * Kills what is left in the cgroup and removes it, retrying for up to `timeoutMs`. No error if it is gone. (A
 * systemd scope whose processes are gone is stopped and unloaded by systemd itself.)
 */
export function removeContainerCgroup(id: string, cgroup: CgroupOptions = LEGACY, timeoutMs = 10_000): void {
  const driver = detectCgroups();
  const path = containerCgroupPath(id, cgroup);
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
      if (Date.now() > deadline) throw err instanceof UserError ? err.wrap(`remove the cgroup of container ${id.slice(0, 12)}`) : err;
      sleepMs(50);
    }
  }
}
