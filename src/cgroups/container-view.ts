import { basename, posix } from 'node:path';
import type { CgroupMount as ContainerCgroupMount } from '../plan/compile.js';
import type { CgroupDriver } from './index.js';

/**
 * The hierarchies a container sees under /sys/fs/cgroup: on v1 one per mount point (cpu and cpuacct may share
 * one, "cpu,cpuacct", with links by each name), with the container's own directory on the host for binding.
 */
export function containerCgroupMounts(driver: CgroupDriver, path: string): ContainerCgroupMount[] {
  if (driver.version === 2) {
    return [{ name: '', controllers: '', hostPath: posix.join((driver as unknown as { fsRoot: string }).fsRoot, path), links: [] }];
  }
  const mounts = (driver as unknown as { mounts: Readonly<Record<string, string>> }).mounts;
  const byMountpoint = new Map<string, string[]>();
  for (const [controller, mountpoint] of Object.entries(mounts)) {
    byMountpoint.set(mountpoint, [...(byMountpoint.get(mountpoint) ?? []), controller]);
  }
  return [...byMountpoint].map(([mountpoint, controllers]) => {
    const name = basename(mountpoint);
    return {
      name,
      controllers: controllers.join(','),
      hostPath: posix.join(mountpoint, path),
      links: controllers.length > 1 ? controllers.filter((c) => c !== name) : [],
    };
  });
}
