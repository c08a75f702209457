/**
 * `poc save`: images as one tar, in docker's format (`docker save`: manifest.json, <config>.json,
 * <layer>/layer.tar, repositories) or as an OCI image layout (oci-layout, index.json, blobs/sha256/...), several
 * images in one, each layer written once. Layers are the store's directories written as tars on the fly; each
 * is checked against its diffID as it goes, so an archive never carries a layer that changed in the store.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { PocError, wrapError } from '../errors.js';
import { randomHex, type RootOptions } from '../poc-root.js';
import { imageLayers, layerDir, tarDirectory, type LayerRef } from './layers.js';
import { MEDIA_TYPES, ociConfigJson, ociManifestJson, sha256 } from './oci.js';
import type { ImageRecord } from './image-store.js';
import { TAR_END, entryHeader, tarPadding } from './tar.js';

export type SaveFormat = 'docker-archive' | 'oci-archive';

/** The OCI config of a stored image (its layers found or made first). */
export async function imageConfigOf(image: ImageRecord, opts: RootOptions = {}): Promise<{ json: string; layers: LayerRef[] }> {
  const layers = await imageLayers(image, opts);
  const history = image.history ?? [{ created: image.created, created_by: `poc ${image.source.kind}` }];
  const created = image.source.kind === 'build' ? (history.at(-1)?.created ?? image.created) : image.created;
  return { json: ociConfigJson({ created, architecture: image.architecture, os: image.os, config: image.config, layers, history }), layers };
}

/** "debian" → "debian:latest": archives name images with a tag. */
export function fullTag(name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.includes(':') ? name : `${name}:latest`;
}

type Part = { name: string; size: number; data: Buffer } | { name: string; size: number; layer: LayerRef; dir: string };

/** The entries of the archive (pure given the configs): json documents and layers, each layer once. */
async function planArchive(images: ImageRecord[], format: SaveFormat, opts: RootOptions): Promise<Part[]> {
  const parts: Part[] = [];
  const written = new Set<string>();
  const file = (name: string, text: string) => {
    if (written.has(name)) return;
    written.add(name);
    const data = Buffer.from(text);
    parts.push({ name, size: data.length, data });
  };
  const layerPart = (name: string, l: LayerRef) => {
    if (written.has(name)) return;
    written.add(name);
    parts.push({ name, size: l.size, layer: l, dir: layerDir(l.diffID, opts) });
  };
  const hex = (d: string) => d.slice('sha256:'.length);
  const dockerManifest: unknown[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  const index: Array<Record<string, unknown>> = [];
  for (const image of images) {
    const { json, layers } = await imageConfigOf(image, opts);
    const configDigest = sha256(json);
    const tag = image.name ? fullTag(image.name) : null;
    if (format === 'docker-archive') {
      file(`${hex(configDigest)}.json`, json);
      for (const l of layers) layerPart(`${hex(l.diffID)}/layer.tar`, l);
      dockerManifest.push({ Config: `${hex(configDigest)}.json`, RepoTags: tag ? [tag] : [], Layers: layers.map((l) => `${hex(l.diffID)}/layer.tar`) });
      if (tag) {
        const colon = tag.lastIndexOf(':');
        (repositories[tag.slice(0, colon)] ??= {})[tag.slice(colon + 1)] = hex(layers.at(-1)?.diffID ?? configDigest);
      }
    } else {
      file(`blobs/sha256/${hex(configDigest)}`, json);
      for (const l of layers) layerPart(`blobs/sha256/${hex(l.diffID)}`, l);
      const manifest = ociManifestJson({ mediaType: MEDIA_TYPES.config, digest: configDigest, size: Buffer.byteLength(json) }, layers);
      const manifestDigest = sha256(manifest);
      file(`blobs/sha256/${hex(manifestDigest)}`, manifest);
      index.push({
        mediaType: MEDIA_TYPES.manifest,
        digest: manifestDigest,
        size: Buffer.byteLength(manifest),
        ...(tag ? { annotations: { 'org.opencontainers.image.ref.name': tag.slice(tag.lastIndexOf(':') + 1), 'io.containerd.image.name': tag } } : {}),
      });
    }
  }
  if (format === 'docker-archive') {
    file('manifest.json', JSON.stringify(dockerManifest));
    file('repositories', JSON.stringify(repositories));
  } else {
    file('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    file('index.json', JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: index }));
  }
  return parts;
}

/** The archive's bytes, in order. */
async function* archiveChunks(parts: Part[]): AsyncGenerator<Buffer> {
  const mtime = Math.floor(Date.now() / 1000);
  const dirs = new Set<string>();
  for (const p of parts) {
    const comps = p.name.split('/').slice(0, -1);
    for (let i = 1; i <= comps.length; i++) {
      const d = comps.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      yield entryHeader({ name: `${d}/`, type: 'dir', size: 0, mode: 0o755, mtime });
    }
    yield entryHeader({ name: p.name, type: 'file', size: p.size, mode: 0o644, mtime });
    if ('data' in p) {
      yield p.data;
    } else {
      const hash = createHash('sha256');
      let size = 0;
      for await (const c of tarDirectory(p.dir, { overlay: true })) {
        hash.update(c);
        size += c.length;
        if (size > p.size) break;
        yield c;
      }
      if (size !== p.size || `sha256:${hash.digest('hex')}` !== p.layer.diffID) {
        throw new PocError(`layer ${p.layer.diffID} in ${p.dir} no longer matches its digest: the layer store was changed`);
      }
    }
    yield tarPadding(p.size);
  }
  yield TAR_END;
}

/** Writes the images to `output` (a file, written whole or not at all) or to stdout when it is undefined. */
export async function saveImages(images: ImageRecord[], format: SaveFormat, output: string | undefined, opts: RootOptions = {}): Promise<void> {
  if (images.length === 0) throw new PocError('save: no image given');
  const parts = await planArchive(images, format, opts);
  await writeArchive(archiveChunks(parts), output, 'save');
}

/** Writes a stream to `output` (tmp + rename: whole or not at all) or to stdout when it is undefined. */
export async function writeArchive(chunks: AsyncIterable<Buffer>, output: string | undefined, what: string): Promise<void> {
  const tmp = output === undefined ? undefined : `${output}.tmp-${process.pid}-${randomHex(4)}`;
  let fd: number;
  try {
    fd = tmp === undefined ? 1 : openSync(tmp, 'w', 0o644);
  } catch (err) {
    throw wrapError(`${what}: write ${output}`, err);
  }
  try {
    for await (const c of chunks) {
      let off = 0;
      while (off < c.length) off += writeSync(fd, c, off, c.length - off);
    }
    if (tmp !== undefined) {
      closeSync(fd);
      renameSync(tmp, output!);
    }
  } catch (err) {
    if (tmp !== undefined) {
      try {
        closeSync(fd);
      } catch {
        // closed already
      }
      try {
        unlinkSync(tmp);
      } catch {
        // never made
      }
    }
    throw wrapError(what, err);
  }
}
