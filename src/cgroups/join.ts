import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { wrapError } from '../errors.js';

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
