import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { wrapError } from '../errors.js';
import type { CgroupDriver } from './index.js';

/**
 * Moves a process into a cgroup through its cgroup.procs files. The first move into a v1 cgroup waits for an
 * RCU grace period (5-25 ms, a kernel cost runc pays too): the asynchronous form runs the writes in the thread
 * pool, so that the wait overlaps with whatever the caller does meanwhile.
 */
export async function joinCgroup(procsFiles: readonly string[], pid: number): Promise<void> {
  await Promise.all(procsFiles.map((file) => writeFile(file, String(pid)).catch((err) => Promise.reject(wrapError(`join cgroup ${file}`, err)))));
}

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
 * Starts the wait for that grace period before the real move is due. The kernel takes one lock for every move,
 * and its first taker waits for the grace period; a move that follows within the next one is quick. Moving this
 * process into the cgroup it is already in changes nothing, but takes that lock: done first thing, from the
 * thread pool, the grace period passes while pocrun reads and checks the config. Failures are ignored: it is
 * only a head start (measured: a first move of ~10 ms becomes ~0.3 ms).
 */
export function startCgroupMoveGracePeriod(driver: CgroupDriver): void {
  try {
    const file = driver.ownProcsFile();
    if (file) writeFile(file, String(process.pid)).catch(() => {});
  } catch {
    /* no head start */
  }
}
