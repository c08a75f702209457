import { writeFileSync } from 'node:fs';
import { wrapError } from '../errors.js';
import { startCgroupMove } from '../runtime/init-helper.js';
import type { CgroupDriver } from './index.js';

export function joinCgroupSync(procsFiles: readonly string[], pid: number): void {
  for (const file of procsFiles) {
    try {
      writeFileSync(file, String(pid));
    } catch (err) {
      throw wrapError(`join cgroup ${file}`, err);
    }
  }
}

/**
 * Starts the kernel's wait for a first cgroup move before the real move is due. The first move into a v1 cgroup
 * waits for an RCU grace period (5-25 ms, a kernel cost runc pays too); the kernel takes one lock for every
 * move, and a move that follows within the next grace period is quick. A process that moves itself into the
 * cgroup it is already in changes nothing, but takes that lock: started first thing, the grace period passes
 * while pocrun reads and checks the config (measured: a first move of ~10 ms becomes ~0.3 ms). That process is
 * the helper in a mode of its own, not a write from Bun's thread pool, whose two threads would stay for the
 * whole command (~0.4 MB). Failures are ignored: it is only a head start.
 */
export function startCgroupMoveGracePeriod(driver: CgroupDriver): void {
  try {
    const file = driver.ownProcsFile();
    if (file) startCgroupMove(file);
  } catch {
    /* no head start */
  }
}
