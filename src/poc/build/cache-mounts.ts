/**
 * The directories of `RUN --mount=type=cache`: `$POC_ROOT/build-cache-mounts/<hash of the id>[.N]`, kept between
 * builds and shared by every build of this POC_ROOT, never part of a layer or of a step's key.
 *
 * As buildkit (solver/llbsolver/ops/exec.go, getRefCacheDir), an id may have several instances, and a step uses one:
 * - `shared` (the default): every shared user at once, on the first instance no exclusive user holds;
 * - `private`: the first instance nobody uses, or a new one (kept, for later users) when all are in use;
 * - `locked`: the first instance nobody uses, else it waits until one is free: its users take turns.
 * Between processes (concurrent `poc build`s), an exclusive use is a lock file `<instance>.lock` and a shared one
 * a file in `<instance>.users/`, each holding its holder's pid and start time (common/lock-file.ts), so that a
 * killed build's use is stale and taken over. Each side writes its own file before it checks for the other's: of
 * two racing users, at least one sees the other and steps back.
 */
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isStaleHolder, lockFileHolder, takeOverStale, tryLockFile } from '../../common/lock-file.js';
import { readProcStat } from '../../common/proc.js';
import { lockHolder } from '../../vocabulary/state-record.js';
import { pocPaths, randomHex, type RootOptions } from '../poc-root.js';
import type { CacheSharing } from './dockerfile.js';

export interface CacheMountOwner {
  mode: number;
  uid: number;
  gid: number;
}

/** A cache mount in use by a step: its directory, and the release of the use. */
export interface CacheMountUse {
  dir: string;
  release: () => void;
}

export function cacheMountsDir(opts: RootOptions = {}): string {
  return join(pocPaths(opts).root, 'build-cache-mounts');
}

const WAIT_MS = 100;

/** What a new instance starts with: nothing, or the files a `from=` names (then the owner and mode are theirs). */
export type CacheSeed = (dir: string) => Promise<void>;

/** Makes an instance's directory with the mount's owner and mode (or seeded), if it is not there. */
async function makeInstance(dir: string, owner: CacheMountOwner, seed?: CacheSeed): Promise<void> {
  if (existsSync(dir)) return;
  mkdirSync(join(dir, '..'), { recursive: true, mode: 0o700 });
  const tmp = `${dir}.tmp-${process.pid}-${randomHex(4)}`;
  mkdirSync(tmp);
  try {
    chownSync(tmp, owner.uid, owner.gid);
    chmodSync(tmp, owner.mode);
    if (seed) await seed(tmp);
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(dir)) throw err; // else made meanwhile by another build
  }
}

/** The instances of an id, the first (`<hash>`) always among them, in order. */
function instances(base: string): string[] {
  const name = base.slice(base.lastIndexOf('/') + 1);
  const re = new RegExp(`^${name}\\.(\\d+)$`);
  let names: string[] = [];
  try {
    names = readdirSync(join(base, '..'));
  } catch {
    // none yet
  }
  const more = names.map((n) => re.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => a - b);
  return [base, ...more.map((n) => `${base}.${n}`)];
}

const myHolder = () => lockHolder(process.pid, readProcStat(process.pid)?.startTime ?? '');

/** How many live shared users an instance has (stale ones are removed). */
function sharedUsers(dir: string): number {
  let names: string[] = [];
  try {
    names = readdirSync(`${dir}.users`);
  } catch {
    return 0;
  }
  let live = 0;
  for (const n of names) {
    const file = join(`${dir}.users`, n);
    const holder = lockFileHolder(file);
    if (holder === '') continue;
    if (isStaleHolder(holder)) rmSync(file, { force: true });
    else live++;
  }
  return live;
}

/** Whether an exclusive user holds the instance (a stale holder's lock is removed). */
function exclusivelyHeld(dir: string): boolean {
  const lock = `${dir}.lock`;
  const holder = lockFileHolder(lock);
  if (holder === '') return false;
  return !takeOverStale(lock, holder);
}

function tryExclusive(dir: string): CacheMountUse | null {
  const lock = `${dir}.lock`;
  if (!tryLockFile(lock)) {
    if (!takeOverStale(lock, lockFileHolder(lock)) || !tryLockFile(lock)) return null;
  }
  const release = () => rmSync(lock, { force: true });
  if (sharedUsers(dir) > 0) {
    release();
    return null;
  }
  return { dir, release };
}

function tryShared(dir: string): CacheMountUse | null {
  if (exclusivelyHeld(dir)) return null;
  mkdirSync(`${dir}.users`, { recursive: true, mode: 0o700 });
  const mark = join(`${dir}.users`, `${process.pid}-${randomHex(6)}`);
  writeFileSync(mark, myHolder(), { mode: 0o600 });
  const release = () => {
    try {
      unlinkSync(mark);
    } catch {
      // removed as stale by someone else: nothing to do
    }
  };
  if (exclusivelyHeld(dir)) {
    release();
    return null;
  }
  return { dir, release };
}

/**
 * Takes a cache mount for a step, by its id and sharing (see the top of this file); `onWait` is called once if a
 * locked use has to wait for another build's. `id` names the cache (with a `from=`, also its files' digest, as
 * buildkit keys such a cache by its base too); `seed` fills each new instance.
 */
export async function useCacheMount(
  id: string,
  sharing: CacheSharing,
  owner: CacheMountOwner,
  opts: RootOptions = {},
  onWait: () => void = () => {},
  seed?: CacheSeed,
): Promise<CacheMountUse> {
  const base = join(cacheMountsDir(opts), createHash('sha256').update(id).digest('hex').slice(0, 32));
  await makeInstance(base, owner, seed);
  let waited = false;
  for (;;) {
    const all = instances(base);
    for (const dir of all) {
      const use = sharing === 'shared' ? tryShared(dir) : tryExclusive(dir);
      if (use) return use;
    }
    if (sharing !== 'locked') {
      // Every instance is in use: a new one, kept for later users (another build may make it first: then retry).
      await makeInstance(`${base}.${all.length}`, owner, seed);
      continue;
    }
    if (!waited) onWait();
    waited = true;
    await new Promise((r) => setTimeout(r, WAIT_MS));
  }
}
