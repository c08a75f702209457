/**
 * A container's cgroup: /poc/<id> (cgroupfs, below --cgroup-parent) or the systemd scope poc-<id>.scope in the
 * --cgroup-parent slice (machine.slice by default), set in config.json by planBundle. pocrun makes it, reports on
 * it (`pocrun events --stats`, `pocrun ps`) and removes it (`pocrun delete`): poc never touches it itself.
 */
import type { CgroupOptions } from './options.js';

/** Containers made before --cgroup-manager existed: cgroupfs under /poc. */
const LEGACY: CgroupOptions = { manager: 'cgroupfs', parent: '/poc' };

/** linux.cgroupsPath for the container: a cgroup path, or slice:poc:<id> for systemd (pocrun --systemd-cgroup). */
export function cgroupsPathOf(id: string, cgroup: CgroupOptions = LEGACY): string {
  return cgroup.manager === 'systemd' ? `${cgroup.parent}:poc:${id}` : `${cgroup.parent}/${id}`;
}
