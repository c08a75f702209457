/**
 * `poc pull NAME[:TAG|@DIGEST]`, and the pull that `poc run`/`create` do for an image that is not there.
 *
 * 1. The name → fully qualified references to try (registries.conf: aliases, search registries), each rewritten
 *    by its [[registry]] entry.
 * 2. The manifest (an index or manifest list → the host's platform), its digest checked.
 * 3. The config and the layers into the blob store (images/blobs.ts), up to 3 at once; a layer already there is
 *    not fetched again. Each blob is checked against its digest and size before it gets its name, and the
 *    config's diff_ids against the manifest's layers.
 * 4. The image committed under its name with its layers to unpack: its files are made on first use
 *    (images/unpack.ts), where each layer's tar is checked against its diff_id (the README says why).
 * Any failure leaves no image, no staging directory and no partial blob (only whole, verified blobs, which a
 * retry uses and `poc prune` removes when no image needs them).
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { UserError, PocError, wrapError } from '../errors.js';
import { blobFile, blobSize, blobTempFile, commitBlob, holdBlobs, sha256, writeBlob } from '../images/blobs.js';
import { imageConfigFrom } from '../images/import.js';
import { commitImage, createStaging, findImageByName, type ImageRecord, type InUse } from '../images/image-store.js';
import type { RootOptions } from '../poc-root.js';
import { describeFetchError, type RegistryClient } from './client.js';
import { candidates, loadRegistriesConf, pullSources, type RegistriesConf } from './config.js';
import { connect, type ConnectOptions } from './connect.js';
import { MANIFEST_ACCEPT, choosePlatform, diffIds, hostPlatform, parseManifest, type Descriptor, type ImageIndex, type ImageManifest, type Platform } from './manifest.js';
import { progressFor, quietProgress, type Progress } from './progress.js';
import { stderr } from '../../common/output.js';
import { formatReference, manifestReference, parseReference, storeName, type Qualified } from './reference.js';

export interface PullOptions extends RootOptions, ConnectOptions {
  progress?: Progress;
  inUse?: InUse;
  platform?: Platform;
  /** registries.conf, when the caller has read it already. */
  conf?: RegistriesConf;
  /**
   * --all-platforms: every manifest of an index and its blobs too (as `skopeo copy --all`), so that a push sends
   * the whole index; the image itself is still the host platform's.
   */
  allPlatforms?: boolean;
  /** "Trying to pull ..." lines (one per candidate registry, as podman prints them). */
  onTry?: (reference: string) => void;
}

export interface PullResult {
  image: ImageRecord;
  /** The reference pulled, fully qualified. */
  reference: string;
  /** The digest the registry serves for it (an index's, for a multi-platform image). */
  digest: string;
  upToDate: boolean;
}

/** How many blobs download at once (docker's default). */
const PARALLEL = 3;

/** A manifest or blob the registry does not have: the next search registry may. */
class NotFound extends PocError {}

/** The local image a name stands for, by its own name or the name a pull from a candidate registry gives it. */
export function findPulledImage(text: string, opts: RootOptions & { conf?: RegistriesConf } = {}): ImageRecord | undefined {
  let cands: Qualified[];
  try {
    cands = candidates(parseReference(text), opts.conf ?? loadRegistriesConf());
  } catch {
    return undefined;
  }
  for (const c of cands) {
    const found = findImageByName(storeName(c), opts);
    if (found) return found;
  }
  return undefined;
}

export async function pullImage(text: string, o: PullOptions = {}): Promise<PullResult> {
  const ref = parseReference(text);
  const conf = o.conf ?? loadRegistriesConf();
  const cands = candidates(ref, conf);
  if (cands.length === 0) {
    throw new PocError(
      `${text} is a short name and ${conf.files.join(', ') || 'registries.conf'} names no unqualified-search-registries and no alias for it: ` +
        'use a fully qualified name (HOST[:PORT]/PATH[:TAG])',
    );
  }
  const missed: string[] = [];
  for (const cand of cands) {
    o.onTry?.(formatReference(cand));
    try {
      return await pullFrom(cand, conf, o);
    } catch (err) {
      if (!(err instanceof NotFound)) throw err;
      missed.push(err.message);
    }
  }
  throw new PocError(missed.length === 1 ? missed[0]! : `${text} was not found in any search registry: ${missed.join('; ')}`);
}

async function fetchManifest(client: RegistryClient, repository: string, reference: string, what: string): Promise<{ body: Buffer; digest: string; contentType: string | null }> {
  const res = await client.request(`/v2/${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT }, repository, actions: 'pull', ok: [404] }, what);
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status === 404) throw new NotFound(`${what}: not found in the registry (manifest unknown)`);
  const digest = sha256(body);
  if (reference.startsWith('sha256:') && digest !== reference) throw new PocError(`${what}: the registry sent a manifest whose digest is ${digest}, not ${reference}`);
  const said = res.headers.get('docker-content-digest');
  if (said && said.startsWith('sha256:') && said !== digest) throw new PocError(`${what}: the manifest's digest is ${digest}, the registry says ${said}`);
  return { body, digest, contentType: res.headers.get('content-type') };
}

/** One blob into the blob store, checked against its descriptor's digest and size. */
async function downloadBlob(client: RegistryClient, repository: string, desc: Descriptor, o: PullOptions, signal: AbortSignal): Promise<void> {
  const progress = o.progress ?? quietProgress;
  if (blobSize(desc.digest, o) === desc.size) {
    progress.layer(desc.digest, 'exists');
    return;
  }
  const what = `blob ${desc.digest}`;
  const tmp = blobTempFile(o);
  const fd = openSync(tmp, 'wx', 0o644);
  let ok = false;
  try {
    const res = await client.request(`/v2/${repository}/blobs/${desc.digest}`, { repository, actions: 'pull', ok: [404] }, what);
    if (res.status === 404) {
      await res.arrayBuffer().catch(() => undefined);
      throw new PocError(`${what} of ${repository} is missing from registry ${client.registry}`);
    }
    if (!res.body) throw new PocError(`${what}: the registry sent no body`);
    const hash = createHash('sha256');
    let n = 0;
    progress.layer(desc.digest, 'downloading', 0, desc.size);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (signal.aborted) throw new PocError('cancelled');
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
        hash.update(chunk);
        n += chunk.length;
        if (n > desc.size) throw new PocError(`${what}: the registry sent more than its ${desc.size} bytes`);
        progress.layer(desc.digest, 'downloading', n, desc.size);
      }
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new PocError(`${what}: the download from ${client.registry} was interrupted after ${n} of ${desc.size} bytes (${describeFetchError(err)})`);
    }
    if (n < desc.size) throw new PocError(`${what}: the download from ${client.registry} ended after ${n} of ${desc.size} bytes`);
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== desc.digest) throw new PocError(`${what}: the data received does not match its digest (got ${got}); the registry's copy is corrupt`);
    progress.layer(desc.digest, 'verifying');
    closeSync(fd);
    ok = true;
    commitBlob(tmp, desc.digest, o);
  } finally {
    if (!ok) {
      closeSync(fd);
      try {
        unlinkSync(tmp);
      } catch {
        // not made
      }
    }
  }
}

/**
 * Downloads blobs (each with the options, and so the progress, it reports with), PARALLEL at once. The first
 * failure cancels the others, and is thrown once they have all stopped (a cancelled download removes its file).
 */
async function downloadBlobs(client: RegistryClient, repository: string, blobs: Array<[Descriptor, PullOptions]>): Promise<void> {
  const abort = new AbortController();
  const downloads = limited(blobs.map(([d, opts]) => () => downloadBlob(client, repository, d, opts, abort.signal)), PARALLEL);
  try {
    await Promise.all(downloads);
  } catch (err) {
    abort.abort();
    await Promise.allSettled(downloads);
    throw err;
  }
}

/** Runs fns with at most `limit` at once; the promises settle in their own time, in order of the array. */
function limited<T>(fns: Array<() => Promise<T>>, limit: number): Array<Promise<T>> {
  let next = 0;
  const starts: Array<() => void> = [];
  const results = fns.map(
    (fn, i) =>
      new Promise<T>((resolve, reject) => {
        starts[i] = () => fn().then(resolve, reject).finally(() => starts[next++]?.());
      }),
  );
  for (; next < Math.min(limit, fns.length); next++) starts[next]!();
  return results;
}

/**
 * The top manifest from the first source that has it (registries.conf: the mirrors, then the location), and the
 * client of that source, which then serves every blob. A mirror that fails (down, refusing, without the image) is
 * passed over, as containers/image passes over it; the location's failure is the error, the mirrors' beside it.
 */
async function firstSource(cand: Qualified, conf: RegistriesConf, reference: string, o: PullOptions): Promise<{ client: RegistryClient; where: Qualified; top: Awaited<ReturnType<typeof fetchManifest>> }> {
  const missed: string[] = [];
  for (const source of pullSources(conf, cand)) {
    const where = source.ref;
    const client = connect(where.registry, where.repository, source.insecure, o);
    try {
      return { client, where, top: await fetchManifest(client, where.repository, manifestReference(where), reference) };
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      if (source.mirror) {
        missed.push(`mirror ${where.registry}/${where.repository}: ${err.message}`);
        continue;
      }
      if (missed.length === 0) throw err;
      const message = `${err.message} (and before it ${missed.join('; ')})`;
      throw err instanceof NotFound ? new NotFound(message) : new PocError(message, 1, { cause: err });
    }
  }
  throw new Error('unreachable: the location is the last source');
}

async function pullFrom(cand: Qualified, conf: RegistriesConf, o: PullOptions): Promise<PullResult> {
  const reference = formatReference(cand);
  const progress = o.progress ?? quietProgress;
  const { client, where, top } = await firstSource(cand, conf, reference, o);
  const repository = where.repository;
  let parsed = parseManifest(top.body, top.contentType, reference);
  let manifest = top;
  /** --all-platforms: the index, and every other manifest of it with the blobs it names. */
  let others: { manifests: Array<{ body: Buffer; digest: string }>; blobs: Descriptor[] } | null = null;
  if (parsed.kind === 'index' && o.allPlatforms) others = await otherManifests(client, repository, parsed.index, reference, o.platform ?? hostPlatform());
  if (parsed.kind === 'index') {
    const chosen = choosePlatform(parsed.index, o.platform ?? hostPlatform(), reference);
    manifest = await fetchManifest(client, repository, chosen.digest, `${reference} (${chosen.platform!.os}/${chosen.platform!.architecture})`);
    if (manifest.digest !== chosen.digest) throw new PocError(`${reference}: the platform manifest does not match its digest ${chosen.digest}`);
    parsed = parseManifest(manifest.body, manifest.contentType, reference);
    if (parsed.kind !== 'manifest') throw new PocError(`${reference}: an index inside an index is not supported`);
  }
  const m = parsed.manifest;
  const name = storeName(cand);
  const repoDigest = `${cand.registry}/${cand.repository}@${top.digest}`;
  const own = [manifest.digest, m.config.digest, ...m.layers.map((l) => l.digest)];
  const blobs = others ? [...new Set([top.digest, ...own, ...others.manifests.map((x) => x.digest), ...others.blobs.map((d) => d.digest)])] : own;

  const existing = findImageByName(name, o);
  if (existing && existing.manifest === manifest.digest && (existing.index ?? null) === (others ? top.digest : null) && blobs.every((d) => blobSize(d, o) !== undefined)) {
    return { image: existing, reference, digest: top.digest, upToDate: true };
  }

  const release = holdBlobs(o);
  try {
    if (others) {
      // The other platforms' configs and layers first (verified as any blob), then their manifests and the index.
      await downloadBlobs(client, repository, others.blobs.map((d) => [d, { ...o, progress: quietProgress }]));
      for (const x of others.manifests) writeBlob(x.body, o);
      writeBlob(top.body, o);
    }
    const image = await unpack(client, repository, m, manifest, { name, reference, blobs, repoDigest, ...(others ? { index: top.digest } : {}) }, o);
    return { image, reference, digest: top.digest, upToDate: false };
  } catch (err) {
    throw wrapError(`pull ${reference}`, err);
  } finally {
    release();
    progress.end();
  }
}

interface Naming {
  name: string;
  reference: string;
  blobs: string[];
  repoDigest: string;
  index?: string;
}

/**
 * Every manifest of an index but the one for `host` (which the pull fetches as always), each checked against its
 * digest, and the blobs they name. Read as plain manifests (a config and layers), whatever their media types: an
 * attestation's layers are blobs to keep like any other, so that the index pushes whole.
 */
async function otherManifests(client: RegistryClient, repository: string, index: ImageIndex, reference: string, host: Platform): Promise<{ manifests: Array<{ body: Buffer; digest: string }>; blobs: Descriptor[] }> {
  const mine = choosePlatform(index, host, reference).digest;
  const manifests: Array<{ body: Buffer; digest: string }> = [];
  const blobs = new Map<string, Descriptor>();
  for (const d of index.manifests) {
    if (d.digest === mine || manifests.some((x) => x.digest === d.digest)) continue;
    const what = `${reference} (${d.platform ? `${d.platform.os}/${d.platform.architecture}` : d.digest})`;
    const got = await fetchManifest(client, repository, d.digest, what);
    let doc: { manifests?: unknown; config?: Descriptor; layers?: Descriptor[] };
    try {
      doc = JSON.parse(got.body.toString()) as typeof doc;
    } catch {
      throw new PocError(`${what}: the manifest is not valid JSON`);
    }
    if (doc.manifests !== undefined) throw new PocError(`${what}: an index inside an index is not supported`);
    for (const b of [doc.config, ...(doc.layers ?? [])]) {
      if (!b || typeof b.digest !== 'string' || typeof b.size !== 'number') throw new PocError(`${what}: a config or layer without a digest and size`);
      blobFile(b.digest); // a sha256 digest, or an error naming it
      blobs.set(b.digest, b);
    }
    manifests.push({ body: got.body, digest: got.digest });
  }
  return { manifests, blobs: [...blobs.values()] };
}

/**
 * The config and the layers into the blob store, and the image committed without its files: they are made from
 * the blobs on its first use (images/unpack.ts), as containerd's content store keeps a pull. Every blob was
 * checked against its digest and size on the way in, and the config's diff_ids against the manifest's layers.
 */
async function unpack(client: RegistryClient, repository: string, m: ImageManifest, manifest: { body: Buffer; digest: string }, n: Naming, o: PullOptions): Promise<ImageRecord> {
  const progress = o.progress ?? quietProgress;
  for (const l of m.layers) progress.layer(l.digest, 'waiting');
  // The config with the layers (it is one more blob); its diff_ids are checked once it is in.
  await downloadBlobs(client, repository, [[m.config, { ...o, progress: quietProgress }], ...m.layers.map((d): [Descriptor, PullOptions] => [d, o])]);
  const configDoc = JSON.parse(readFileSync(blobFile(m.config.digest, o), 'utf8')) as Record<string, unknown>;
  const ids = diffIds(configDoc, m.layers.length, n.reference);
  writeBlob(manifest.body, o);
  for (const l of m.layers) progress.layer(l.digest, 'done');
  const staging = createStaging(o, false);
  try {
    return await commitImage(staging, {
      ...o,
      name: n.name,
      replace: true,
      source: { kind: 'registry', path: n.reference },
      config: imageConfigFrom(configDoc.config),
      digest: m.config.digest,
      manifest: manifest.digest,
      blobs: n.blobs,
      repoDigests: [n.repoDigest],
      ...(n.index ? { index: n.index } : {}),
      unpack: m.layers.map((l, i) => ({ digest: l.digest, diffID: ids[i]! })),
      size: m.layers.reduce((sum, l) => sum + uncompressedSize(blobFile(l.digest, o), l.size), 0),
      ...(typeof configDoc.architecture === 'string' ? { architecture: configDoc.architecture } : {}),
    });
  } catch (err) {
    staging.discard();
    throw err;
  }
}

/**
 * The size of a layer's tar, before it is unpacked: a gzip stream's last 4 bytes hold it (modulo 2^32, RFC 1952's
 * ISIZE, for a one-member stream as layers are); another compression: the blob's own size.
 */
function uncompressedSize(path: string, size: number): number {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    if (size < 18 || readSync(fd, b, 0, 2, 0) !== 2 || b[0] !== 0x1f || b[1] !== 0x8b) return size;
    return readSync(fd, b, 0, 4, size - 4) === 4 ? b.readUInt32LE(0) : size;
  } finally {
    closeSync(fd);
  }
}

/**
 * `poc run`/`create` of an image that is not in the store: the image a pull of this name made earlier, else a
 * pull now (progress on a terminal, as `poc pull`). A name no registry is configured for stays "no such image".
 */
export async function pullMissing(ref: string, opts: RootOptions): Promise<ImageRecord> {
  const noSuch = (why: string) => new PocError(`no such image: ${ref} (${why}; "poc images" lists them; "poc pull", "poc init" or "poc import" makes one)`);
  let cands: Qualified[];
  const conf = loadRegistriesConf();
  try {
    cands = candidates(parseReference(ref), conf);
  } catch {
    throw noSuch('not in the store, and not a name a registry could have');
  }
  const local = findPulledImage(ref, { ...opts, conf });
  if (local) return local;
  if (cands.length === 0) throw noSuch('not in the store, and no registry to pull it from: it is a short name and registries.conf names no search registries or alias for it');
  stderr(`Unable to find image '${ref}' locally\n`);
  const { imagesInUse } = await import('../commands/images.js');
  const r = await pullImage(ref, { ...opts, conf, inUse: imagesInUse(opts), progress: progressFor() });
  return r.image;
}
