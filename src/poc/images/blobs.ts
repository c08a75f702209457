/**
 * The blob store: content-addressed files `$POC_ROOT/blobs/sha256/<hex>`, as an OCI image layout keeps them.
 * It holds the manifests, configs and compressed layers of images that came in layers (pulled; built), so
 * that a layer shared by two images is fetched and kept once, and a push sends the very blobs that were pulled
 * (same digests, so the registry can mount them instead of receiving them again).
 *
 * A blob is written under a temporary name and renamed to its digest only after the bytes were checked
 * against it: a blob file that exists is always whole and right.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PocError, errnoCode } from '../../errors.js';
import { pidAlive, pocPaths, randomHex, type RootOptions } from '../store.js';

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

export function blobsDir(opts: RootOptions = {}): string {
  return join(pocPaths(opts).root, 'blobs', 'sha256');
}

/** The path of a blob; the digest is checked before it becomes a path. */
export function blobFile(digest: string, opts: RootOptions = {}): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new PocError(`unsupported digest ${JSON.stringify(digest)} (poc keeps sha256 blobs)`);
  return join(blobsDir(opts), m[1]!);
}

/** The size of a blob in the store, or undefined when it is not there. */
export function blobSize(digest: string, opts: RootOptions = {}): number | undefined {
  try {
    return statSync(blobFile(digest, opts)).size;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

export function readBlob(digest: string, opts: RootOptions = {}): Buffer {
  return readFileSync(blobFile(digest, opts));
}

/** A temporary file in the blob directory (same filesystem, so the final rename is atomic). */
export function blobTempFile(opts: RootOptions = {}): string {
  return join(blobsDir(opts), `.tmp-${process.pid}-${randomHex(6)}`);
}

/** Moves a checked temporary file to its digest's name. */
export function commitBlob(tmp: string, digest: string, opts: RootOptions = {}): string {
  const path = blobFile(digest, opts);
  renameSync(tmp, path);
  return path;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Bytes held in memory (a manifest, a config) into the store; returns their digest. */
export function writeBlob(data: Buffer, opts: RootOptions = {}): string {
  const digest = sha256(data);
  if (blobSize(digest, opts) === data.length) return digest;
  const tmp = blobTempFile(opts);
  try {
    writeFileSync(tmp, data, { flag: 'wx', mode: 0o644 });
    commitBlob(tmp, digest, opts);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return digest;
}

/**
 * Removes the blobs no image names (`keep`), and temporary files of processes that are gone. Called with the
 * images lock held, so no pull is between writing a blob and recording it... except one still downloading:
 * its temporary files are kept while its process lives, and its finished blobs are recent, so blobs younger
 * than `graceMs` are kept too.
 */
export function pruneBlobs(keep: Set<string>, opts: RootOptions & { graceMs?: number } = {}): string[] {
  const dir = blobsDir(opts);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  const cutoff = Date.now() - (opts.graceMs ?? 10 * 60_000);
  for (const n of names) {
    const path = join(dir, n);
    const tmp = /^\.tmp-(\d+)-/.exec(n);
    if (tmp) {
      if (!pidAlive(Number(tmp[1]))) rmSync(path, { force: true });
      continue;
    }
    if (keep.has(`sha256:${n}`)) continue;
    try {
      if (statSync(path).mtimeMs > cutoff) continue;
      unlinkSync(path);
      removed.push(`sha256:${n}`);
    } catch {
      // gone meanwhile
    }
  }
  return removed;
}
