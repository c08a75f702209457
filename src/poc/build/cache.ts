/**
 * The build cache: `$POC_ROOT/build-cache/<key>.json`, one file per step done, keyed by a digest of the parent
 * step's key, the instruction (after variable expansion), the config it ran with (env, user, workdir, shell,
 * build args in scope) and, for COPY and ADD, the digest of the files read. What a hit gives: the step's layer
 * (still in the layer store, else it is a miss) and the time it was first made, so that an unchanged rebuild
 * makes a byte-identical config and so the same image.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { layerDir, type LayerRef } from '../images/layers.js';
import { pocPaths, readJson, writeJsonAtomic, type RootOptions } from '../poc-root.js';
import { cacheMountsDir } from './cache-mounts.js';

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

/** `poc builder prune`: forgets every step (the layers go with the next image prune) and the cache mounts. */
export function cacheClear(opts: RootOptions = {}): void {
  rmSync(cacheDir(opts), { recursive: true, force: true });
  rmSync(cacheMountsDir(opts), { recursive: true, force: true });
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
