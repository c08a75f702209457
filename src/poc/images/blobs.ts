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
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PocError, errnoCode } from '../errors.js';
import { pidAlive, pocPaths, randomHex, type RootOptions } from '../poc-root.js';

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
 * Marks the blob store as in use by this process until `release` (a pull or push between writing blobs and
 * recording them on an image): while any such mark's process lives, pruneBlobs removes nothing.
 */
export function holdBlobs(opts: RootOptions = {}): () => void {
  mkdirSync(blobsDir(opts), { recursive: true, mode: 0o700 });
  const mark = blobTempFile(opts);
  writeFileSync(mark, '', { flag: 'wx' });
  return () => rmSync(mark, { force: true });
}

/**
 * Removes the blobs no image names (`keep`), and temporary files of processes that are gone. Called with the
 * images lock held; a pull or push in progress (holdBlobs) defers it to a later prune.
 */
export function pruneBlobs(keep: Set<string>, opts: RootOptions = {}): string[] {
  const dir = blobsDir(opts);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  let busy = false;
  for (const n of names) {
    const tmp = /^\.tmp-(\d+)-/.exec(n);
    if (!tmp) continue;
    if (pidAlive(Number(tmp[1]))) busy = true;
    else rmSync(join(dir, n), { force: true });
  }
  if (busy) return [];
  const removed: string[] = [];
  for (const n of names) {
    if (n.startsWith('.') || keep.has(`sha256:${n}`)) continue;
    rmSync(join(dir, n), { force: true });
    removed.push(`sha256:${n}`);
  }
  return removed;
}
