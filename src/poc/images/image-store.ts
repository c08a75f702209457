/**
 * The image store: `$POC_ROOT/images/<id>/{rootfs/, image.json}`. An image is built or imported into a staging
 * directory (`.tmp-<pid>-<rand>`) and renamed into place only when complete, so a failed or interrupted import
 * leaves no image behind (and `pruneImages` removes staging directories whose process is gone).
 */
import type { HealthConfig } from '../containers/health.js';
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PocError } from '../errors.js';
import { pruneBlobs } from './blobs.js';
import type { LayerRef } from './layers.js';
import type { PackedLayer } from './unpack.js';
import { runProgram } from '../spawn.js';
import { checkName, newId, pidAlive, pocPaths, randomHex, readJson, readRecords, readdirOr, resolveRef, withLock, writeJsonAtomic, type RootOptions } from '../poc-root.js';

/** The part of an OCI/docker image config that poc uses to run a container. */
export interface ImageConfig {
  Env: string[];
  Cmd: string[] | null;
  Entrypoint: string[] | null;
  WorkingDir: string;
  User: string;
  Labels?: Record<string, string>;
  ExposedPorts?: Record<string, unknown>;
  StopSignal?: string;
  /** VOLUME paths: each gets an anonymous volume unless the container mounts something there. */
  Volumes?: Record<string, unknown>;
  /** HEALTHCHECK, as docker writes it (durations in ns). */
  Healthcheck?: HealthConfig;
  Shell?: string[];
  /** ONBUILD: instructions, as written, that a build FROM this image runs first (and does not pass on). */
  OnBuild?: string[];
}

/** One entry of the image config's history: the step that made a layer (or, empty_layer, only config). */
export interface HistoryEntry {
  created: string;
  created_by: string;
  empty_layer?: boolean;
  comment?: string;
}

export type ImageSourceKind = 'busybox' | 'debian' | 'tarball' | 'docker-archive' | 'oci-layout' | 'registry' | 'build' | 'commit';

/** image.json */
export interface ImageRecord {
  id: string;
  /** null once untagged (`rmi -f` of an image a container still uses). */
  name: string | null;
  /** ISO 8601. */
  created: string;
  /**
   * Bytes of file data in rootfs/; for a pulled image not yet unpacked (`unpack`), the size of its layers'
   * uncompressed tars as the blobs tell it, until its first use.
   */
  size: number;
  architecture: string;
  os: string;
  source: { kind: ImageSourceKind; path?: string };
  /** The config digest of an imported OCI or docker image, or of a built one (its OCI config as layers.ts writes it). */
  digest?: string;
  /**
   * For an image whose manifest, config and layers are in the blob store (blobs.ts): the manifest's digest, and
   * every blob it needs (manifest, config, layers), which `poc prune` keeps.
   */
  manifest?: string;
  blobs?: string[];
  /** Where a pulled image came from, as `registry/repository@manifest-digest` (docker's RepoDigests). */
  repoDigests?: string[];
  /**
   * Pulled with --all-platforms: the digest of the index it came from; the index, every platform's manifest and
   * their blobs are in the store (listed in `blobs`), and a push sends the whole index.
   */
  index?: string;
  /**
   * A pulled image whose files are made on first use (images/unpack.ts): its layers' blobs, oldest first, each
   * with the digest its uncompressed tar must have. Present while rootfs/ does not exist yet.
   */
  unpack?: PackedLayer[];
  config: ImageConfig;
  /**
   * The layers (src/poc/images/layers.ts), oldest first, once known: a built or committed image has them from
   * the start, an imported or bootstrapped one gets one layer (its rootfs) the first time it is a base or saved.
   */
  layers?: LayerRef[];
  /** One entry per step, layer or not, as the OCI config's history. */
  history?: HistoryEntry[];
}

export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function defaultImageConfig(overrides: Partial<ImageConfig> = {}): ImageConfig {
  return { Env: [DEFAULT_PATH_ENV], Cmd: ['/bin/sh'], Entrypoint: null, WorkingDir: '/', User: '', ...overrides };
}

/** Docker's names for node's process.arch. */
export function ociArchitecture(arch: string = process.arch): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

/** An image's record in its directory. */
const RECORD = 'image.json';

export function imageDir(id: string, opts: RootOptions = {}): string {
  return join(pocPaths(opts).images, id);
}

/** The directory a container's overlayfs uses as its lower layer. */
export function imageRootfs(image: Pick<ImageRecord, 'id'>, opts: RootOptions = {}): string {
  return join(imageDir(image.id, opts), 'rootfs');
}

export function listImages(opts: RootOptions = {}): ImageRecord[] {
  return readRecords<ImageRecord>(pocPaths(opts).images, RECORD).sort((a, b) => b.created.localeCompare(a.created));
}

/** An image by name, full id or unique id prefix. */
export function resolveImage(ref: string, opts: RootOptions = {}): ImageRecord {
  return resolveRef('image', listImages(opts), ref);
}

export function findImageByName(name: string, opts: RootOptions = {}): ImageRecord | undefined {
  return listImages(opts).find((i) => i.name === name);
}

export interface Staging {
  dir: string;
  rootfs: string;
  discard(): void;
}

/** A staging directory; `withRootfs` false for an image whose files come later (a pulled one: unpack.ts). */
export function createStaging(opts: RootOptions = {}, withRootfs = true): Staging {
  const images = pocPaths(opts).images;
  mkdirSync(images, { recursive: true, mode: 0o700 });
  const dir = join(images, `.tmp-${process.pid}-${randomHex(6)}`);
  const rootfs = join(dir, 'rootfs');
  mkdirSync(withRootfs ? rootfs : dir, { recursive: true, mode: withRootfs ? 0o755 : 0o700 });
  return { dir, rootfs, discard: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Sum of regular file sizes under dir, each inode once. */
export function treeSize(dir: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = lstatSync(p, { bigint: true });
        const key = `${st.dev}:${st.ino}`;
        if (st.nlink > 1n) {
          if (seen.has(key)) continue;
          seen.add(key);
        }
        total += Number(st.size);
      }
    }
  };
  walk(dir);
  return total;
}

/** Which containers use an image (supplied by the container side); refuses removal while non-empty. */
export type InUse = (image: ImageRecord) => string[] | Promise<string[]>;

/**
 * What commitImage takes of the record it writes: the record's own fields (`unpack` and `size` for an image
 * committed without its files, a pull), then what it does with a name already taken. It makes the id; created,
 * size and architecture default to now, the files' size and this machine's.
 */
export interface CommitOptions
  extends RootOptions,
    Pick<ImageRecord, 'name' | 'source' | 'config' | 'digest' | 'manifest' | 'blobs' | 'repoDigests' | 'index' | 'unpack' | 'layers' | 'history'>,
    Partial<Pick<ImageRecord, 'created' | 'size' | 'architecture'>> {
  /** Replace an image of the same name (else that is an error). */
  replace?: boolean;
  /** As docker build and commit: an image of the same name keeps its files and loses the name. */
  untagOld?: boolean;
  inUse?: InUse;
}

/** Moves a finished staging directory into the store as a named image. */
export async function commitImage(staging: Staging, opts: CommitOptions): Promise<ImageRecord> {
  if (opts.name !== null) checkName('image', opts.name);
  const record: ImageRecord = {
    id: newId(),
    name: opts.name,
    created: opts.created ?? new Date().toISOString(),
    size: opts.unpack ? (opts.size ?? 0) : treeSize(staging.rootfs),
    architecture: opts.architecture ?? ociArchitecture(),
    os: 'linux',
    source: opts.source,
    ...(opts.digest ? { digest: opts.digest } : {}),
    ...(opts.manifest ? { manifest: opts.manifest } : {}),
    ...(opts.blobs ? { blobs: opts.blobs } : {}),
    ...(opts.repoDigests ? { repoDigests: opts.repoDigests } : {}),
    ...(opts.index ? { index: opts.index } : {}),
    ...(opts.unpack ? { unpack: opts.unpack } : {}),
    config: opts.config,
    ...(opts.layers ? { layers: opts.layers } : {}),
    ...(opts.history ? { history: opts.history } : {}),
  };
  writeJsonAtomic(join(staging.dir, RECORD), record);
  await withLock(
    'images',
    async () => {
      const old = opts.name === null ? undefined : findImageByName(opts.name, opts);
      if (old && !opts.replace && !opts.untagOld) throw new PocError(`image name ${JSON.stringify(opts.name)} is already in use by image ${old.id.slice(0, 12)}`);
      renameSync(staging.dir, imageDir(record.id, opts));
      if (old && opts.untagOld) writeImageRecord({ ...old, name: null }, opts);
      else if (old) await dropImage(old, true, opts.inUse, opts);
    },
    opts,
  );
  return record;
}

/** Records that an image's manifest, config and layers are now in the blob store (push packed its rootfs). */
export async function recordBlobs(id: string, manifest: string, blobs: string[], opts: RootOptions = {}): Promise<void> {
  await withLock(
    'images',
    () => {
      const file = join(imageDir(id, opts), RECORD);
      writeJsonAtomic(file, { ...readJson<ImageRecord>(file), manifest, blobs });
    },
    opts,
  );
}

/** Rewrites an image's image.json (a new name, layers found). */
export function writeImageRecord(record: ImageRecord, opts: RootOptions = {}): void {
  writeJsonAtomic(join(imageDir(record.id, opts), RECORD), record);
}

/**
 * Gives `name` to an image (`poc tag`, a build's -t): an image holding the name already loses it, as with docker.
 * An untagged image is renamed; a named one is copied under the new name (an image has one name in poc's store:
 * the copy's rootfs is hard links to the original's files, so it costs directories, not data, and each record
 * still owns its files). Returns the image with the name.
 */
export async function tagImage(image: ImageRecord, name: string, opts: RootOptions & { inUse?: InUse } = {}): Promise<ImageRecord> {
  checkName('image', name);
  if (image.name === name) return image;
  if (image.name === null) {
    return withLock(
      'images',
      () => {
        const current = resolveImage(image.id, opts);
        const old = findImageByName(name, opts);
        if (old) writeImageRecord({ ...old, name: null }, opts);
        const renamed = { ...current, name };
        writeImageRecord(renamed, opts);
        return renamed;
      },
      opts,
    );
  }
  // A pulled image not unpacked yet: the copy is one too (its record alone), and makes its own files when used.
  const packed = image.unpack !== undefined && !existsSync(imageRootfs(image, opts));
  const staging = createStaging(opts, !packed);
  try {
    if (!packed) {
      const r = await runProgram(['cp', '-a', '-l', `${imageRootfs(image, opts)}/.`, `${staging.rootfs}/`]);
      if (r.code !== 0) throw new PocError(`copy the files of image ${image.id.slice(0, 12)}: ${r.stderr.trim()}`);
    }
    const { id: _id, name: _name, size, unpack, ...rest } = image;
    void _id;
    void _name;
    return await commitImage(staging, { ...opts, ...rest, ...(packed ? { unpack, size } : {}), name, untagOld: true });
  } catch (err) {
    staging.discard();
    throw err;
  }
}

export interface RemoveImageOptions extends RootOptions {
  /** Remove even if containers use it: the image is untagged, and its files stay until no container uses it. */
  force?: boolean;
  inUse?: InUse;
}

export interface RemoveImageResult {
  id: string;
  /** "deleted", or "untagged" when containers still use its files. */
  action: 'deleted' | 'untagged';
}

/** `poc rmi`: refused while a container uses the image, unless force. */
export async function removeImage(ref: string, opts: RemoveImageOptions = {}): Promise<RemoveImageResult> {
  return withLock(
    'images',
    async () => {
      const image = resolveImage(ref, opts);
      return dropImage(image, opts.force ?? false, opts.inUse, opts);
    },
    opts,
  );
}

async function dropImage(image: ImageRecord, force: boolean, inUse: InUse | undefined, opts: RootOptions): Promise<RemoveImageResult> {
  const users = inUse ? await inUse(image) : [];
  if (users.length > 0) {
    if (!force) {
      throw new PocError(
        `image ${image.name ?? image.id.slice(0, 12)} is in use by container${users.length > 1 ? 's' : ''} ${users.join(', ')} (remove ${users.length > 1 ? 'them' : 'it'} first, or use -f)`,
      );
    }
    // Its rootfs is a mounted lower layer: keep the files, drop the name.
    writeJsonAtomic(join(imageDir(image.id, opts), RECORD), { ...image, name: null });
    return { id: image.id, action: 'untagged' };
  }
  // Rename first so that a half-deleted image is never listed.
  const trash = join(pocPaths(opts).images, `.tmp-${process.pid}-rm-${image.id.slice(0, 12)}`);
  renameSync(imageDir(image.id, opts), trash);
  rmSync(trash, { recursive: true, force: true });
  return { id: image.id, action: 'deleted' };
}

/**
 * Removes untagged images no container uses, staging directories left by processes that are gone, and blobs no
 * image needs any more.
 */
export async function pruneImages(opts: RootOptions & { inUse?: InUse } = {}): Promise<string[]> {
  return withLock(
    'images',
    async () => {
      const removed: string[] = [];
      for (const image of listImages(opts)) {
        if (image.name !== null) continue;
        if ((await dropImage(image, false, opts.inUse, opts).catch(() => null))?.action === 'deleted') removed.push(image.id);
      }
      const dir = pocPaths(opts).images;
      for (const n of readdirOr(dir)) {
        const m = /^\.tmp-(\d+)-/.exec(n);
        if (m && !pidAlive(Number(m[1]))) rmSync(join(dir, n), { recursive: true, force: true });
      }
      pruneBlobs(new Set(listImages(opts).flatMap((i) => i.blobs ?? [])), opts);
      return removed;
    },
    opts,
  );
}
