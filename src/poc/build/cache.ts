/**
 * The build cache: `$POC_ROOT/build-cache/<key>.json`, one file per step done, keyed by a digest of the parent
 * step's key, the instruction (after variable expansion), the config it ran with (env, user, workdir, shell,
 * build args in scope) and, for COPY and ADD, the digest of the files read. What a hit gives: the step's layer
 * (still in the layer store, else it is a miss) and the time it was first made, so that an unchanged rebuild
 * makes a byte-identical config and so the same image.
 */
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { layerDir, type LayerRef } from '../images/layers.js';
import { pocPaths, readJson, writeJsonAtomic, type RootOptions } from '../poc-root.js';

export interface CacheEntry {
  layer: LayerRef | null;
  created: string;
}

export function cacheDir(opts: RootOptions = {}): string {
  return join(pocPaths(opts).root, 'build-cache');
}

/** The key of a step (pure): a digest of everything its result depends on. */
export function stepKey(parent: string, step: unknown): string {
  return createHash('sha256').update(parent).update('\n').update(JSON.stringify(step)).digest('hex');
}

export function cacheGet(key: string, opts: RootOptions = {}): CacheEntry | null {
  const entry = readJson<CacheEntry | null>(join(cacheDir(opts), `${key}.json`), null);
  if (entry === null) return null;
  if (entry.layer && !existsSync(layerDir(entry.layer.diffID, opts))) return null;
  return entry;
}

export function cachePut(key: string, entry: CacheEntry, opts: RootOptions = {}): void {
  mkdirSync(cacheDir(opts), { recursive: true, mode: 0o700 });
  writeJsonAtomic(join(cacheDir(opts), `${key}.json`), entry);
}

/**
 * The directory of a `RUN --mount=type=cache` (by its id): kept between builds and shared by every build of this
 * POC_ROOT, never part of a layer or of a step's key, as buildkit's cache mounts. Made on first use with the
 * mount's mode and owner.
 */
export function cacheMountDir(id: string, owner: { mode: number; uid: number; gid: number }, opts: RootOptions = {}): string {
  const dir = join(pocPaths(opts).root, 'build-cache-mounts', createHash('sha256').update(id).digest('hex').slice(0, 32));
  if (!existsSync(dir)) {
    mkdirSync(join(dir, '..'), { recursive: true, mode: 0o700 });
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    chownSync(tmp, owner.uid, owner.gid);
    chmodSync(tmp, owner.mode);
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // made meanwhile by another build
    }
  }
  return dir;
}

/** `poc builder prune`: forgets every step (the layers go with the next image prune) and the cache mounts. */
export function cacheClear(opts: RootOptions = {}): void {
  rmSync(cacheDir(opts), { recursive: true, force: true });
  rmSync(join(pocPaths(opts).root, 'build-cache-mounts'), { recursive: true, force: true });
}

/** The layers the cache refers to (kept by image prune; `poc builder prune` lets them go). */
export function cachedLayers(opts: RootOptions = {}): Set<string> {
  const out = new Set<string>();
  let names: string[] = [];
  try {
    names = readdirSync(cacheDir(opts));
  } catch {
    return out;
  }
  for (const n of names) {
    if (!n.endsWith('.json')) continue;
    const e = readJson<CacheEntry | null>(join(cacheDir(opts), n), null);
    if (e?.layer) out.add(e.layer.diffID);
  }
  return out;
}
