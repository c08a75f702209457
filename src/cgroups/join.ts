import { writeFileSync } from 'node:fs';
import { wrapError } from '../errors.js';

export function joinCgroupSync(procsFiles: readonly string[], pid: number): void {
  for (const file of procsFiles) {
    try {
      writeFileSync(file, String(pid));
    } catch (err) {
      throw wrapError(`join cgroup ${file}`, err);
    }
  }
}
