import { writeFileSync } from 'node:fs';
import type { Spec } from '../spec/generated/config.js';
import { wrapError } from '../errors.js';
import { idMapText } from '../plan/namespaces.js';

/** Written by the runtime between the helper's sync points, while the new user namespace waits for them. */
export function writeIdMaps(pid: number, spec: Spec): void {
  try {
    writeFileSync(`/proc/${pid}/uid_map`, idMapText(spec.linux?.uidMappings));
  } catch (err) {
    throw wrapError('config.json /linux/uidMappings: write uid_map', err);
  }
  try {
    writeFileSync(`/proc/${pid}/gid_map`, idMapText(spec.linux?.gidMappings));
  } catch (err) {
    throw wrapError('config.json /linux/gidMappings: write gid_map', err);
  }
}
