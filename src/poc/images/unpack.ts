/**
 * The files of a pulled image, made when they are first needed.
 *
 * `poc pull` keeps what `skopeo copy` to a directory and containerd's content store keep: the manifest, the
 * config and the layer blobs, each checked against its digest and size as it arrives, and the image's record
 * (`poc images` lists it; its `unpack` field names its layers). The image's rootfs/ is made the first time
 * something needs its files: a container (`poc run`/`create`), a build FROM it or COPY --from it, `poc save`.
 * The layers are applied in order into a staging directory, each blob's bytes checked again against its digest
 * and its uncompressed tar against the config's diff_id in the same pass; then the directory is renamed into
 * place. So a rootfs/ that exists is whole, a damaged blob or an image whose config lies about its layers fails
 * with the layer named and leaves nothing, and one process unpacks an image at a time (a lock per image: a
 * second `poc run` of it waits for the first one's unpack and uses it).
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { PocError, wrapError } from '../errors.js';
import { withLock, type RootOptions } from '../poc-root.js';
import { blobFile, blobSize } from './blobs.js';
import { openDecompressed } from './import.js';
import { applyLayer } from './layer.js';
import { createStaging, imageRootfs, resolveImage, treeSize, writeImageRecord, type ImageRecord } from './image-store.js';

/** A layer of an image not unpacked yet: its blob, and the digest of its uncompressed tar (the diff_id). */
export interface PackedLayer {
  digest: string;
  diffID: string;
}

/** How long a second user of an image waits for the first one's unpack (a large image on a slow disk). */
const UNPACK_WAIT_MS = 30 * 60_000;

/** Whether the image's files are there (always, but for a pulled image before its first use). */
export function isUnpacked(image: ImageRecord, opts: RootOptions = {}): boolean {
  return existsSync(imageRootfs(image, opts));
}

/**
 * The image with its files in rootfs/: unpacked now from its blobs if it was not yet. Returns the record as it
 * stands afterwards (its size is then the files' own).
 */
export async function unpackImage(image: ImageRecord, opts: RootOptions = {}): Promise<ImageRecord> {
  if (isUnpacked(image, opts) && !image.unpack) return image;
  const label = image.name ?? image.id.slice(0, 12);
  return withLock(
    `unpack-${image.id}`,
    async () => {
      const current = resolveImage(image.id, opts);
      const layers = current.unpack;
      if (!layers) {
        if (isUnpacked(current, opts)) return current;
        throw new PocError(`image ${label}: its files (${imageRootfs(current, opts)}) are missing; remove it ("poc rmi") and pull or import it again`);
      }
      if (!isUnpacked(current, opts)) {
        const staging = createStaging(opts);
        try {
          await applyPackedLayers(staging.rootfs, layers, opts);
          renameSync(staging.rootfs, imageRootfs(current, opts));
        } catch (err) {
          throw wrapError(`unpack image ${label}`, err);
        } finally {
          staging.discard();
        }
      }
      // The record last: a crash before this line leaves a whole rootfs/ and a record still saying `unpack`,
      // which the next use completes here.
      return withLock(
        'images',
        () => {
          const { unpack: _unpack, ...rest } = resolveImage(image.id, opts);
          void _unpack;
          const done: ImageRecord = { ...rest, size: treeSize(imageRootfs(rest, opts)) };
          writeImageRecord(done, opts);
          return done;
        },
        opts,
      );
    },
    { ...opts, timeoutMs: UNPACK_WAIT_MS },
  );
}

/** Passes a stream on while hashing it (a layer's diff_id is the digest of its uncompressed tar). */
async function* hashing(source: AsyncIterable<Buffer>, hash: Hash): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
}

/** The layers' blobs applied in order onto rootfs, each checked against both its digests in one pass. */
export async function applyPackedLayers(rootfs: string, layers: PackedLayer[], opts: RootOptions = {}): Promise<void> {
  for (const [i, layer] of layers.entries()) {
    const what = `layer ${i + 1} of ${layers.length} (${layer.digest})`;
    if (blobSize(layer.digest, opts) === undefined) throw new PocError(`${what}: its blob is missing from the store; pull the image again`);
    const blob = createHash('sha256');
    const diff = createHash('sha256');
    try {
      await applyLayer(rootfs, hashing(openDecompressed(blobFile(layer.digest, opts), blob), diff));
    } catch (err) {
      // Bad data stops the unpack before the blob's digest is known: the blob is hashed alone to tell a
      // damaged copy from a bad image.
      const got = fileDigest(blobFile(layer.digest, opts));
      if (got !== layer.digest) throw damaged(what, layer.digest, got, opts);
      throw wrapError(what, err);
    }
    const gotBlob = `sha256:${blob.digest('hex')}`;
    if (gotBlob !== layer.digest) throw damaged(what, layer.digest, gotBlob, opts);
    const gotDiff = `sha256:${diff.digest('hex')}`;
    if (gotDiff !== layer.diffID) throw new PocError(`${what}: its content's digest is ${gotDiff}, the image config says ${layer.diffID}`);
  }
}

/** A blob damaged on disk since it was checked: removed, so that a pull fetches it again instead of finding it. */
function damaged(what: string, digest: string, got: string, opts: RootOptions): PocError {
  rmSync(blobFile(digest, opts), { force: true });
  return new PocError(`${what}: the blob in the store no longer matches its digest (its bytes hash to ${got}); it was removed: pull the image again`);
}

function fileDigest(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return `sha256:${hash.digest('hex')}`;
}
