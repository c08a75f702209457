/**
 * The systemd cgroup driver's names, as runc derives them (libcontainer/specconv and cgroups/systemd): with
 * --systemd-cgroup, `linux.cgroupsPath` is `slice:prefix:name`, the container's unit is the scope
 * `prefix-name.scope` placed in `slice`, and its cgroup is the slice's path (systemd's nesting of dashed names,
 * ExpandSlice) followed by the unit. Pure: no system call.
 */
import { PocrunError } from '../errors.js';
import { slicePath } from '../vocabulary/systemd-slice.js';
import { managerCgroup } from '../common/systemd.js';

/** runc's default without linux.cgroupsPath is `runc-<id>.scope` in system.slice; pocrun's, by its own name. */
export const DEFAULT_SCOPE_PREFIX = 'pocrun';

export interface SystemdUnit {
  /** The slice the unit is placed in (its Slice= property). */
  slice: string;
  /** The transient unit's name: `prefix-name.scope`. */
  unit: string;
  /** The unit's cgroup, relative to the hierarchy's root, as the cgroupfs drivers take it. */
  cgroupPath: string;
}

const FIELD = 'config.json /linux/cgroupsPath';

/**
 * systemd's nesting of slices: `a-b-c.slice` is /a.slice/a-b.slice/a-b-c.slice; `-.slice` is the root.
 * Errors (an empty component, a slash, no `.slice` suffix) are those of runc's ExpandSlice.
 */
export function expandSlice(slice: string): string {
  const path = slicePath(slice);
  if (path === undefined) throw new PocrunError(`${FIELD}: ${JSON.stringify(slice)} is not a slice name (NAME.slice, dash-separated parents, no "/" and no empty part)`);
  return path;
}


/**
 * The unit for a container: `linux.cgroupsPath` (`slice:prefix:name`; an empty slice is system.slice, or
 * user.slice for a rootless runtime) or, without one, runc's default under pocrun's name
 * (`system.slice:pocrun:<id>`). Rootless (`userUid`), the slice is in the user's manager (managerCgroup).
 */
export function systemdUnitFor(cgroupsPath: string | undefined, id: string, userUid?: number): SystemdUnit {
  const defaultSlice = userUid === undefined ? 'system.slice' : 'user.slice';
  let [slice, prefix, name] = [defaultSlice, DEFAULT_SCOPE_PREFIX, id];
  if (cgroupsPath !== undefined && cgroupsPath !== '') {
    const parts = cgroupsPath.split(':');
    if (parts.length !== 3) {
      throw new PocrunError(
        `${FIELD}: ${JSON.stringify(cgroupsPath)} is not of the form "slice:prefix:name", which --systemd-cgroup needs (for example "system.slice:pocrun:${id}")`,
      );
    }
    [slice, prefix, name] = [parts[0] || defaultSlice, parts[1]!, parts[2]!];
  }
  if (name === '') throw new PocrunError(`${FIELD}: ${JSON.stringify(cgroupsPath)} has an empty unit name (slice:prefix:name)`);
  if (name.includes('/') || prefix.includes('/')) throw new PocrunError(`${FIELD}: ${JSON.stringify(cgroupsPath)}: a unit name cannot hold "/"`);
  // runc: a name ending in .slice would be a slice unit of its own; pocrun makes scopes only.
  if (name.endsWith('.slice')) throw new PocrunError(`${FIELD}: ${JSON.stringify(cgroupsPath)}: the name is a slice; pocrun makes a scope for a container (slice:prefix:name)`);
  const unit = prefix === '' ? `${name}.scope` : `${prefix}-${name}.scope`;
  const parent = expandSlice(slice);
  return { slice, unit, cgroupPath: `${managerCgroup(userUid)}${parent === '/' ? '' : parent}/${unit}` };
}

/**
 * The unit and slice of a cgroup path this driver made (`.../<slice>/<unit>`): later commands find them from the
 * path recorded in state.json.
 */
export function unitOfCgroupPath(cgroupPath: string): { unit: string; slice: string } {
  const parts = cgroupPath.split('/').filter(Boolean);
  const unit = parts.at(-1);
  if (!unit?.endsWith('.scope')) throw new PocrunError(`cgroup ${cgroupPath}: not a systemd scope's cgroup`);
  return { unit, slice: parts.at(-2) ?? '-.slice' };
}
