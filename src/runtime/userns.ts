import { writeFileSync } from 'node:fs';
import type { Spec } from '../spec/generated/config.js';
import { wrapError } from '../errors.js';

/** Written by the runtime between the helper's sync points, while the new user namespace waits for them. */
export function writeIdMaps(pid: number, spec: Spec): void {
  const lines = (maps: { containerID: number; hostID: number; size: number }[] = []) =>
    maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
  try {
    writeFileSync(`/proc/${pid}/uid_map`, lines(spec.linux?.uidMappings));
  } catch (err) {
    throw wrapError('config.json /linux/uidMappings: write uid_map', err);
  }
  try {
    writeFileSync(`/proc/${pid}/gid_map`, lines(spec.linux?.gidMappings));
  } catch (err) {
    throw wrapError('config.json /linux/gidMappings: write gid_map', err);
  }
}
