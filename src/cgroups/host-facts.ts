/** What `pocrun features` says about this host's cgroups (a module of its own: node:os stays out of create). */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { CgroupDriver } from './index.js';
import type { CgroupV1Driver } from './v1.js';
import type { CgroupV2Driver } from './v2.js';

/** Linux 5.7 brought clone3's CLONE_INTO_CGROUP (the helper falls back to a move where it is missing). */
export function kernelHasCloneIntoCgroup(kernel: string = release()): boolean {
  const [major = 0, minor = 0] = kernel.split(/[.-]/).map(Number);
  return major > 5 || (major === 5 && minor >= 7);
}

/**
 * What the cgroups of this host give a container, as `pocrun features` annotations: the spec's `linux.cgroup`
 * says what the runtime can drive whatever the host, these say what this host has.
 */
export function hostCgroupFacts(driver: CgroupDriver, kernel: string = release()): Record<string, string> {
  const prefix = 'io.github.pocrun.cgroup';
  if (driver.version === 2) {
    const root = (driver as CgroupV2Driver).fsRoot;
    let controllers = '';
    try {
      controllers = readFileSync(`${root}/cgroup.controllers`, 'utf8').trim();
    } catch {
      // an unreadable root: no controllers to claim
    }
    return {
      [`${prefix}.version`]: '2',
      [`${prefix}.controllers`]: controllers,
      [`${prefix}.freezer`]: 'cgroup.freeze',
      [`${prefix}.cloneIntoCgroup`]: String(kernelHasCloneIntoCgroup(kernel)),
    };
  }
  const mounts = (driver as CgroupV1Driver).mounts;
  return {
    [`${prefix}.version`]: '1',
    [`${prefix}.controllers`]: Object.keys(mounts).join(' '),
    [`${prefix}.freezer`]: 'freezer' in mounts ? 'freezer' : 'none',
    [`${prefix}.cloneIntoCgroup`]: 'false',
  };
}
