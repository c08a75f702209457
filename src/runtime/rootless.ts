/**
 * Rootless mode: what changes when pocrun runs as an ordinary user, decided as runc decides it
 * (runc's main.go and rootless_linux.go). The pure rules take their inputs as arguments and are unit-tested; the
 * few reads of the process's own facts are at the bottom.
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { PocrunError } from '../errors.js';
import { errnoText } from '../cgroups/fs.js';

export type RootlessFlag = boolean | 'auto';

/** --rootless true|false|auto (runc's parseBoolOrAuto: Go's strconv.ParseBool spellings, or auto). */
export function parseRootlessFlag(value: string | undefined): RootlessFlag {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new PocrunError(`invalid --rootless ${JSON.stringify(value)}: use true, false or auto`);
}

/**
 * Whether cgroups are managed as for an unprivileged user (runc's shouldUseRootlessCgroupManager): the flag when
 * given; under auto, any user but root, and root inside a user namespace (it cannot know whether its cgroups are
 * delegated to it, so it does its best, as runc).
 */
export function rootlessMode(flag: RootlessFlag, euid: number, inUserNs: () => boolean): boolean {
  if (flag !== 'auto') return flag;
  return euid !== 0 || inUserNs();
}

/**
 * The default --root, as runc's: `$XDG_RUNTIME_DIR/pocrun` for a user other than root (and for root in a user
 * namespace whose USER is not root), else /run/pocrun. The native front (src/native/front/pocrun.c,
 * default_root) applies the same rule; test/unit/rootless.test.ts and front.test.ts hold the two together.
 */
export function defaultRoot(env: Record<string, string | undefined>, euid: number, inUserNs: () => boolean): string {
  const xdg = env.XDG_RUNTIME_DIR;
  if (xdg && (euid !== 0 || (env.USER !== 'root' && inUserNs()))) return `${xdg.replace(/\/+$/, '')}/pocrun`;
  return '/run/pocrun';
}

/** A uid_map that is not the initial namespace's identity map `0 0 4294967295` (runc's userns.RunningInUserNS). */
export function uidMapIsUserNs(uidMap: string): boolean {
  const f = uidMap.trim().split(/\s+/);
  return !(f.length === 3 && f[0] === '0' && f[1] === '0' && f[2] === '4294967295');
}

let inUserNsCache: boolean | undefined;

/** Whether this process runs in a user namespace other than the initial one. */
export function runningInUserNs(): boolean {
  if (inUserNsCache === undefined) {
    try {
      inUserNsCache = uidMapIsUserNs(readFileSync('/proc/self/uid_map', 'utf8'));
    } catch {
      inUserNsCache = false;
    }
  }
  return inUserNsCache;
}

export const euid = (): number => process.geteuid?.() ?? 0;

/** An id of a user namespace as its parent sees it, through that namespace's uid_map text; undefined if unmapped. */
export function outsideId(idMap: string, id: number): number | undefined {
  for (const line of idMap.trim().split('\n')) {
    const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
    if (inside !== undefined && outside !== undefined && count !== undefined && id >= inside && id < inside + count) return outside + (id - inside);
  }
  return undefined;
}

/**
 * The effective uid as the parent user namespace sees it: the user whose own systemd a rootless runtime asks
 * for a scope, also when it runs as root of a user namespace of that user's (rootless podman's, poc's).
 */
export function hostEuid(): number {
  if (!runningInUserNs()) return euid();
  return outsideId(readFileSync('/proc/self/uid_map', 'utf8'), euid()) ?? euid();
}
export const egid = (): number => process.getegid?.() ?? 0;

/**
 * The first field of linux.resources that asks for something, as a JSON pointer, or undefined when none does.
 * Device rules are left out: as runc, a rootless container's device rules are not enforced where it has no
 * cgroup (it cannot make device nodes in its user namespace anyway; the ones it gets are bound from the host).
 */
export function firstResourceField(resources: unknown, pointer = '/linux/resources'): string | undefined {
  if (resources === undefined || resources === null) return undefined;
  if (Array.isArray(resources)) return resources.length ? pointer : undefined;
  if (typeof resources !== 'object') return pointer;
  for (const [key, value] of Object.entries(resources)) {
    if (pointer === '/linux/resources' && key === 'devices') continue;
    const found = firstResourceField(value, `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`);
    if (found) return found;
  }
  return undefined;
}

/** Whether an error, or one it wraps, is the kernel's refusal for lack of rights (EACCES, EPERM, EROFS). */
export function isPermissionError(err: unknown): boolean {
  for (let e = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') return true;
  }
  return false;
}

/** The state's `owner`: the user's name from /etc/passwd (getpwuid's answer for local users), or `#UID`. */
export function ownerName(uid: number, passwd = (): string => readFileSync('/etc/passwd', 'utf8')): string {
  if (uid === 0) return 'root';
  try {
    for (const line of passwd().split('\n')) {
      const f = line.split(':');
      if (f.length >= 3 && f[2] === String(uid)) return f[0]!;
    }
  } catch {
    /* no passwd file: the number then */
  }
  return `#${uid}`;
}

/**
 * The refusal that making the cgroup `path` (its directories `dirs`, one per hierarchy) would meet for lack of
 * rights, found without making anything: mkdir needs write and search rights on the nearest directory that
 * exists, which access(2) checks with the same ids (pocrun is never set-uid: its real ids are its effective
 * ones). Undefined when every directory may be made; mkdir still has the last word then.
 */
export function cgroupOutOfReach(path: string, dirs: readonly string[]): PocrunError | undefined {
  if (process.getuid?.() !== euid()) return undefined;
  for (const dir of dirs) {
    if (existsSync(dir)) continue; // nothing to make there: what it holds decides later
    let existing = dirname(dir);
    while (existing !== '/' && !existsSync(existing)) existing = dirname(existing);
    try {
      accessSync(existing, constants.W_OK | constants.X_OK);
    } catch (err) {
      return new PocrunError(`cgroup ${path}: mkdir in ${existing}: ${errnoText(err)}`, 1, { cause: err });
    }
  }
  return undefined;
}
