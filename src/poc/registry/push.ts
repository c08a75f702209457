/**
 * `poc push IMAGE [DESTINATION]`.
 *
 * An image that came in layers (pulled) is pushed as it is: the same manifest, config and layer blobs from the
 * blob store, so its digest does not change. An image poc made (built, committed, init, imported) is packed
 * from its layers as `poc save` writes them (images/layers.ts; a flat image is one layer), each gzipped into
 * the blob store with an OCI config and manifest, which are recorded on the image, so that the next push sends
 * the same bytes.
 *
 * Each blob: HEAD (the registry has it: skip); else a cross-repository mount from a repository of the same
 * registry this image was pulled from (201: done; 202: the registry declined, upload to the session it opened);
 * else an upload session (POST), the blob in chunks (PATCH with Content-Range), and the PUT that closes it with
 * the digest. Up to 3 blobs at once; the manifest last.
 */
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, openSync, readSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { PocError, wrapError } from '../errors.js';
import { blobFile, blobSize, blobTempFile, commitBlob, holdBlobs, readBlob, sha256, writeBlob } from '../images/blobs.js';
import { layerDir, tarDirectory, type LayerRef } from '../images/layers.js';
import { imageConfigOf } from '../images/save.js';
import { listImages, recordBlobs, resolveImage, type ImageRecord } from '../images/image-store.js';
import { pipeline } from 'node:stream/promises';
import type { RootOptions } from '../poc-root.js';
import type { RegistryClient } from './client.js';
import { loadRegistriesConf, rewrite } from './config.js';
import { connect, type ConnectOptions } from './connect.js';
import { MEDIA, parseManifest, type Descriptor, type ImageManifest } from './manifest.js';
import { quietProgress, type Progress } from './progress.js';
import { findPulledImage } from './pull.js';
import { formatReference, manifestReference, parseReference, qualify } from './reference.js';

export interface PushOptions extends RootOptions, ConnectOptions {
  progress?: Progress;
  /** Bytes per PATCH; 0: the whole blob in one PUT. */
  chunkSize?: number;
}

export interface PushResult {
  reference: string;
  digest: string;
}

export const DEFAULT_CHUNK = 32 * 1024 * 1024;
const PARALLEL = 3;

/** A local image by name, id, or the name a pull of this reference gave it. */
function localImage(text: string, o: RootOptions): ImageRecord {
  try {
    return resolveImage(text, o);
  } catch (err) {
    const pulled = findPulledImage(text, o);
    if (pulled) return pulled;
    throw err;
  }
}

/**
 * One layer of the layer store (images/layers.ts, the tar its diffID was taken of) gzipped into the blob store.
 * The tar is checked against the diffID as it goes by.
 */
async function gzipLayer(layer: LayerRef, o: RootOptions): Promise<Descriptor> {
  const tmp = blobTempFile(o);
  const diff = createHash('sha256');
  const packed = createHash('sha256');
  let size = 0;
  const gzip = createGzip();
  gzip.on('data', (d: Buffer) => {
    packed.update(d);
    size += d.length;
  });
  async function* tar(): AsyncGenerator<Buffer> {
    for await (const chunk of tarDirectory(layerDir(layer.diffID, o), { overlay: true })) {
      diff.update(chunk);
      yield chunk;
    }
  }
  try {
    await pipeline(Readable.from(tar()), gzip, createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    const diffID = `sha256:${diff.digest('hex')}`;
    if (diffID !== layer.diffID) throw new PocError(`layer ${layer.diffID} in the layer store has changed (its tar is now ${diffID})`);
    const digest = `sha256:${packed.digest('hex')}`;
    commitBlob(tmp, digest, o);
    return { mediaType: MEDIA.ociLayerGzip, digest, size };
  } catch (err) {
    rmSync(tmp, { force: true });
    throw wrapError(`pack layer ${layer.diffID}`, err);
  }
}

/** The manifest to push and its bytes: the image's own, or one made now from its rootfs. */
async function manifestOf(image: ImageRecord, o: RootOptions): Promise<{ manifest: ImageManifest; body: Buffer; mediaType: string }> {
  if (image.manifest && (image.blobs ?? []).every((d) => blobSize(d, o) !== undefined)) {
    const body = readBlob(image.manifest, o);
    const parsed = parseManifest(body, null, `image ${image.name ?? image.id}`);
    if (parsed.kind === 'manifest') return { manifest: parsed.manifest, body, mediaType: parsed.manifest.mediaType };
  }
  // Held until the image names its new blobs, so that a prune meanwhile does not take them.
  const release = holdBlobs(o);
  try {
    return await packImage(image, o);
  } finally {
    release();
  }
}

async function packImage(image: ImageRecord, o: RootOptions): Promise<{ manifest: ImageManifest; body: Buffer; mediaType: string }> {
  // The same config and layers `poc save` writes (an image made flat becomes one layer there, once).
  const { json, layers } = await imageConfigOf(image, o);
  const packed: Descriptor[] = [];
  for (const l of layers) packed.push(await gzipLayer(l, o));
  const configBody = Buffer.from(json);
  const configDigest = writeBlob(configBody, o);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: { mediaType: MEDIA.ociConfig, digest: configDigest, size: configBody.length },
    layers: packed,
  };
  const body = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = writeBlob(body, o);
  await recordBlobs(image.id, manifestDigest, [manifestDigest, configDigest, ...packed.map((l) => l.digest)], o);
  return { manifest, body, mediaType: MEDIA.ociManifest };
}

/** A repository of this registry that has the blob (an image pulled from it lists it), for a mount. */
function mountSource(registry: string, repository: string, digest: string, o: RootOptions): string | undefined {
  for (const img of listImages(o)) {
    if (!img.blobs?.includes(digest)) continue;
    for (const rd of img.repoDigests ?? []) {
      const at = rd.indexOf('@');
      const name = rd.slice(0, at);
      const slash = name.indexOf('/');
      if (name.slice(0, slash) === registry && name.slice(slash + 1) !== repository) return name.slice(slash + 1);
    }
  }
  return undefined;
}

function locationOf(res: Response, client: RegistryClient, what: string): string {
  const loc = res.headers.get('location');
  if (!loc) throw new PocError(`${what}: the registry opened an upload without a Location`);
  return new URL(loc, client.url('/')).toString();
}

async function uploadBlob(client: RegistryClient, repository: string, desc: Descriptor, o: PushOptions): Promise<void> {
  const progress = o.progress ?? quietProgress;
  const what = `push blob ${desc.digest}`;
  const scope = { repository, actions: 'pull,push' as const };
  const head = await client.request(`/v2/${repository}/blobs/${desc.digest}`, { ...scope, method: 'HEAD', ok: [404] }, what);
  if (head.status === 200) {
    progress.layer(desc.digest, 'exists');
    return;
  }
  let session: Response | undefined;
  const from = mountSource(client.registry, repository, desc.digest, o);
  if (from) {
    session = await client.request(
      `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
      { ...scope, method: 'POST', extraScopes: [`repository:${from}:pull`], redirect: 'manual' },
      what,
    );
    await session.arrayBuffer().catch(() => undefined);
    if (session.status === 201) {
      progress.layer(desc.digest, 'mounted');
      return;
    }
  }
  if (!session || session.status !== 202) {
    session = await client.request(`/v2/${repository}/blobs/uploads/`, { ...scope, method: 'POST', redirect: 'manual' }, what);
    await session.arrayBuffer().catch(() => undefined);
  }
  let location = locationOf(session, client, what);
  const chunk = o.chunkSize ?? DEFAULT_CHUNK;
  const fd = openSync(blobFile(desc.digest, o), 'r');
  try {
    let sent = 0;
    progress.layer(desc.digest, 'uploading', 0, desc.size);
    if (chunk > 0) {
      const buf = Buffer.allocUnsafe(Math.min(chunk, Math.max(desc.size, 1)));
      while (sent < desc.size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, desc.size - sent), sent);
        if (n <= 0) throw new PocError(`${what}: the blob file is shorter than ${desc.size} bytes`);
        const res = await client.request(
          location,
          {
            ...scope,
            method: 'PATCH',
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${sent}-${sent + n - 1}`, 'content-length': String(n) },
            body: buf.subarray(0, n),
            redirect: 'manual',
          },
          what,
        );
        await res.arrayBuffer().catch(() => undefined);
        location = locationOf(res, client, what);
        sent += n;
        progress.layer(desc.digest, 'uploading', sent, desc.size);
      }
    }
    const url = new URL(location);
    url.searchParams.set('digest', desc.digest);
    const body = chunk > 0 ? null : readBlob(desc.digest, o);
    const done = await client.request(
      url.toString(),
      { ...scope, method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) }, body, redirect: 'manual' },
      what,
    );
    await done.arrayBuffer().catch(() => undefined);
    if (done.status !== 201) throw new PocError(`${what}: the registry answered the final PUT with HTTP ${done.status}`);
    progress.layer(desc.digest, 'pushed');
  } finally {
    closeSync(fd);
  }
}

/** Blobs up to the registry, up to PARALLEL at once; the first failure stops the rest and is thrown. */
async function uploadAll(client: RegistryClient, repository: string, blobs: Descriptor[], o: PushOptions): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < blobs.length) {
      const d = blobs[next++]!;
      try {
        await uploadBlob(client, repository, d, o);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, blobs.length) }, worker));
  if (failed !== undefined) throw failed;
}

export async function pushImage(imageText: string, destText: string, o: PushOptions = {}): Promise<PushResult> {
  const image = localImage(imageText, o);
  const dest = parseReference(destText);
  if (!dest.registry) throw new PocError(`push ${destText}: name the registry (HOST[:PORT]/PATH[:TAG]); poc does not guess one`);
  if (dest.digest) throw new PocError(`push ${destText}: push to a tag, not a digest`);
  const conf = loadRegistriesConf();
  const { ref: where, insecure } = rewrite(conf, qualify(dest, dest.registry));
  const reference = formatReference(qualify(dest, dest.registry));
  const progress = o.progress ?? quietProgress;
  try {
    const client = connect(where.registry, where.repository, insecure, o);
    const putManifest = async (ref: string, body: Buffer, mediaType: string) => {
      const res = await client.request(
        `/v2/${where.repository}/manifests/${ref}`,
        { repository: where.repository, actions: 'pull,push', method: 'PUT', headers: { 'content-type': mediaType }, body },
        `push manifest ${ref === manifestReference(where) ? `of ${reference}` : ref}`,
      );
      await res.arrayBuffer().catch(() => undefined);
    };
    if (image.index && (image.blobs ?? []).every((d) => blobSize(d, o) !== undefined)) {
      // Pulled with --all-platforms: every platform's blobs, then each manifest by its digest, then the index
      // under the tag, all as they were pulled (the same digests).
      const body = readBlob(image.index, o);
      const parsed = parseManifest(body, null, `image ${image.name ?? image.id}`);
      if (parsed.kind !== 'index') throw new PocError(`image ${image.name ?? image.id}: its recorded index ${image.index} is not an index`);
      const manifests = parsed.index.manifests.map((d) => ({ d, body: readBlob(d.digest, o) }));
      const blobs = new Map<string, Descriptor>();
      for (const { body: mb } of manifests) {
        const doc = JSON.parse(mb.toString()) as { config: Descriptor; layers?: Descriptor[] };
        for (const b of [...(doc.layers ?? []), doc.config]) blobs.set(b.digest, b);
      }
      await uploadAll(client, where.repository, [...blobs.values()], o);
      for (const { d, body: mb } of manifests) await putManifest(d.digest, mb, d.mediaType);
      await putManifest(manifestReference(where), body, parsed.index.mediaType);
      return { reference, digest: sha256(body) };
    }
    const { manifest, body, mediaType } = await manifestOf(image, o);
    await uploadAll(client, where.repository, [...manifest.layers, manifest.config], o);
    await putManifest(manifestReference(where), body, mediaType);
    return { reference, digest: sha256(body) };
  } catch (err) {
    throw wrapError(`push ${reference}`, err);
  } finally {
    progress.end();
  }
}
