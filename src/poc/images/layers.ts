/**
 * Image layers: `$POC_ROOT/layers/<hex of the diffID>/`, each the changes of one step as an overlayfs upper
 * directory (whiteouts as 0/0 character devices, opaque directories marked with trusted.overlay.opaque). Such a
 * directory is at once a lower layer of the next step's overlay (nothing to unpack on a cache hit) and, written
 * as a tar by `tarDirectory`, the OCI layer whose sha256 is its diffID: the writer is deterministic (names in
 * order, the files' own metadata, hard links only within the layer), so the tar written when an image is saved
 * or pushed is byte for byte the one hashed when the layer was made.
 *
 * An image's rootfs/ stays its flattened view (containers use it as their one lower layer); `flattenLayers`
 * makes it from the parent's rootfs and the new layers with hard links, not copies (no layer file is ever
 * written once stored).
 */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, lchownSync, utimesSync, lstatSync, mkdirSync, openSync, readSync, readdirSync, readlinkSync, renameSync, rmSync, unlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { PocError, errnoCode, wrapError } from '../errors.js';
import { runProgram } from '../spawn.js';
import { pidAlive, pocPaths, randomHex, withLock, type RootOptions } from '../poc-root.js';
import { ociConfigJson, sha256 } from './oci.js';
import { commitImage, createStaging, imageRootfs, resolveImage, writeImageRecord, type CommitOptions, type HistoryEntry, type ImageRecord } from './image-store.js';
import { unpackImage } from './unpack.js';
import { TAR_END, entryHeader, tarPadding, type TarEntryType } from './tar.js';
import { getXattr, readXattrs } from './xattr.js';

/** A layer as the image config's rootfs.diff_ids and the manifest list it: the digest and size of its tar. */
export interface LayerRef {
  diffID: string;
  size: number;
}

export function layersRoot(opts: RootOptions = {}): string {
  return join(pocPaths(opts).root, 'layers');
}

export function layerDir(diffID: string, opts: RootOptions = {}): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(diffID);
  if (!m) throw new PocError(`invalid layer digest ${JSON.stringify(diffID)}`);
  return join(layersRoot(opts), m[1]!);
}

const OPAQUE_XATTR = 'trusted.overlay.opaque';
/** overlayfs's own bookkeeping, never part of a layer. */
const isLayerXattr = (name: string) => !name.startsWith('trusted.overlay.');

export interface TarDirectoryOptions {
  /** Read overlayfs whiteouts and opaque marks as OCI whiteouts (an upper directory); else every node as it is. */
  overlay?: boolean;
  /** Names in the archive start with this (`app/`); default: the directory's contents at the top. */
  prefix?: string;
  /** Leaves out what it refuses (a path on disk, and whether it is a directory): .dockerignore. */
  filter?: (path: string, isDir: boolean) => boolean;
  /** Every entry owned by this (COPY and its --chown) instead of the files' owners. */
  owner?: { uid: number; gid: number };
  /** Every file and directory with this mode (COPY --chmod). */
  mode?: number;
  /** Every entry with this mtime (0 for a digest of the content alone). */
  mtime?: number;
  /** Extended attributes (default true). */
  xattrs?: boolean;
  /** The end-of-archive blocks (default true; false to join several into one archive). */
  end?: boolean;
}

function entryType(st: Stats): TarEntryType | null {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return null; // sockets: not archived, as with docker
}

const major = (rdev: number) => ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
const minor = (rdev: number) => (rdev & 0xff) | ((rdev >>> 12) & 0xfff00);

const CHUNK = 1 << 20;

/** A file's data, exactly `size` bytes, in chunks; a file that shrank while read is an error. */
export function* fileChunks(path: string, size: number): Generator<Buffer> {
  const fd = openSync(path, 'r');
  try {
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(left, CHUNK));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) throw new PocError(`${path} changed while it was read`);
      left -= n;
      yield n === buf.length ? buf : buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/** Byte order, as Go sorts names: the archive is the same whatever the locale. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/**
 * The tar entries of one node (and, for a directory, of everything under it): `path` on disk, `name` in the
 * archive. Deterministic: names in byte order, directories with a trailing "/"; owners, modes, mtimes (whole
 * seconds) and extended attributes as on disk unless the options say otherwise; a second name of an inode seen
 * earlier in this archive (`seen`) as a hard link to the first.
 */
export async function* tarNode(path: string, name: string, o: TarDirectoryOptions = {}, seen = new Map<string, string>(), st = lstatSync(path)): AsyncGenerator<Buffer> {
  const type = entryType(st);
  if (type === null) return;
  const meta = {
    mode: o.mode !== undefined && (st.isFile() || st.isDirectory()) ? o.mode : st.mode & 0o7777,
    uid: o.owner?.uid ?? st.uid,
    gid: o.owner?.gid ?? st.gid,
    mtime: o.mtime ?? Math.floor(st.mtimeMs / 1000),
  };
  const base = name.slice(name.lastIndexOf('/') + 1);
  const parent = name.slice(0, name.length - base.length);
  if (o.overlay && type === 'char' && st.rdev === 0) {
    yield entryHeader({ name: `${parent}.wh.${base}`, type: 'file', size: 0, ...meta, mode: 0 });
    return;
  }
  const xattrs = type === 'symlink' || o.xattrs === false ? {} : await readXattrs(path, isLayerXattr);
  const extra = Object.keys(xattrs).length ? { xattrs } : {};
  if (type === 'dir') {
    if (name !== '') yield entryHeader({ name: `${name}/`, type, size: 0, ...meta, ...extra });
    if (o.overlay && (await getXattr(path, OPAQUE_XATTR))?.toString() === 'y') {
      yield entryHeader({ name: `${name}/.wh..wh..opq`, type: 'file', size: 0, ...meta, mode: 0 });
    }
    for (const n of readdirSync(path).sort(byBytes)) {
      const child = name === '' ? n : `${name}/${n}`;
      const childPath = join(path, n);
      const childSt = lstatSync(childPath);
      if (o.filter && !o.filter(childPath, childSt.isDirectory())) continue;
      yield* tarNode(childPath, child, o, seen, childSt);
    }
    return;
  }
  if (type !== 'symlink' && st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = seen.get(key);
    if (first !== undefined) {
      yield entryHeader({ name, type: 'hardlink', linkname: first, size: 0, ...meta });
      return;
    }
    seen.set(key, name);
  }
  if (type === 'file') {
    yield entryHeader({ name, type, size: st.size, ...meta, ...extra });
    yield* fileChunks(path, st.size);
    yield tarPadding(st.size);
  } else if (type === 'symlink') {
    yield entryHeader({ name, type, size: 0, linkname: readlinkSync(path), ...meta });
  } else {
    yield entryHeader({ name, type, size: 0, devmajor: major(st.rdev), devminor: minor(st.rdev), ...meta, ...extra });
  }
}

/** The tar of a directory's contents (see tarNode); with `prefix`, under that name. */
export async function* tarDirectory(dir: string, o: TarDirectoryOptions = {}): AsyncGenerator<Buffer> {
  yield* tarNode(dir, o.prefix?.replace(/\/+$/, '') ?? '', o);
  if (o.end !== false) yield TAR_END;
}

/** The diffID and size of a directory's tar, without writing it anywhere. */
export async function digestDirectory(dir: string, o: TarDirectoryOptions = {}): Promise<LayerRef> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of tarDirectory(dir, o)) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { diffID: `sha256:${hash.digest('hex')}`, size };
}

/**
 * Moves a finished upper directory into the layer store under its digest. The same content stored already (by
 * an earlier build, or a concurrent one) is kept and ours dropped.
 */
export async function storeLayer(upper: string, opts: RootOptions = {}): Promise<LayerRef> {
  const ref = await digestDirectory(upper, { overlay: true });
  const dest = layerDir(ref.diffID, opts);
  mkdirSync(layersRoot(opts), { recursive: true, mode: 0o700 });
  try {
    renameSync(upper, dest);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw wrapError(`store layer ${ref.diffID}`, err);
    rmSync(upper, { recursive: true, force: true });
  }
  return ref;
}

/** A scratch directory in the layer store's file system (so that storing a layer is a rename). */
export function layerScratch(opts: RootOptions = {}): string {
  mkdirSync(layersRoot(opts), { recursive: true, mode: 0o700 });
  const dir = join(layersRoot(opts), `.tmp-${process.pid}-${randomHex(6)}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

async function cp(args: string[]): Promise<void> {
  const r = await runProgram(['cp', ...args]);
  if (r.code !== 0) throw new PocError(`cp ${args.join(' ')}: ${r.stderr.trim() || `exit status ${r.code}`}`);
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
    throw err;
  }
}

/**
 * Makes `target` (an empty directory) the flattened view of `base` (a rootfs, or null for scratch) with the
 * layer directories on top, oldest first, as overlayfs would show them. Files are hard links into the base and
 * the layers; directories are new.
 */
export async function flattenLayers(target: string, base: string | null, layers: string[]): Promise<void> {
  if (base !== null) await cp(['-a', '-l', `${base}/.`, `${target}/`]);
  for (const layer of layers) {
    const whiteouts: string[] = [];
    const dirs: Array<[string, Stats]> = [];
    // First what cp cannot do: deletions, emptied directories, and a directory replaced by a file or back.
    const walk = async (rel: string) => {
      for (const n of readdirSync(join(layer, rel))) {
        const name = rel === '' ? n : `${rel}/${n}`;
        const st = lstatSync(join(layer, name));
        const there = lstatOrNull(join(target, name));
        if (st.isCharacterDevice() && st.rdev === 0) {
          whiteouts.push(name);
          if (there) rmSync(join(target, name), { recursive: true, force: true });
        } else if (st.isDirectory()) {
          dirs.push([name, st]);
          if (there && !there.isDirectory()) unlinkSync(join(target, name));
          if ((await getXattr(join(layer, name), OPAQUE_XATTR))?.toString() === 'y') {
            if (there?.isDirectory()) for (const c of readdirSync(join(target, name))) rmSync(join(target, name, c), { recursive: true, force: true });
          }
          await walk(name);
        } else if (there?.isDirectory()) {
          rmSync(join(target, name), { recursive: true, force: true });
        }
      }
    };
    await walk('');
    await cp(['-dRl', '--preserve=mode,ownership,timestamps,links', '--remove-destination', `${layer}/.`, `${target}/`]);
    for (const w of whiteouts) rmSync(join(target, w), { force: true });
    // cp leaves the set-id and sticky bits of a directory that was there already: the layer's metadata wins.
    for (const [name, st] of dirs.reverse()) {
      const p = join(target, name);
      lchownSync(p, st.uid, st.gid);
      chmodSync(p, st.mode & 0o7777);
      utimesSync(p, st.atime, st.mtime);
    }
  }
}

/** The history of an image made in one piece (init, import, pull): one step, the one imageLayers records. */
export function flatHistory(image: ImageRecord): HistoryEntry[] {
  return image.history ?? [{ created: image.created, created_by: `poc ${image.source.kind === 'debian' || image.source.kind === 'busybox' ? 'init' : 'import'} ${image.source.kind}` }];
}

/**
 * An image's layers, each present in the layer store. An image that has none recorded (bootstrapped, built in
 * one piece or imported flat) becomes one layer, its rootfs, the first time: hashed as a tar, and put in the
 * store as hard links to its files.
 */
export async function imageLayers(image: ImageRecord, opts: RootOptions = {}): Promise<LayerRef[]> {
  if (image.layers) {
    for (const l of image.layers) {
      if (!existsSync(layerDir(l.diffID, opts))) throw new PocError(`image ${image.name ?? image.id.slice(0, 12)}: layer ${l.diffID} is missing from the store`);
    }
    return image.layers;
  }
  image = await unpackImage(image, opts);
  const rootfs = imageRootfs(image, opts);
  const ref = await digestDirectory(rootfs);
  const dest = layerDir(ref.diffID, opts);
  if (!existsSync(dest)) {
    const scratch = layerScratch(opts);
    try {
      await cp(['-a', '-l', rootfs, join(scratch, 'layer')]);
      try {
        renameSync(join(scratch, 'layer'), dest);
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST' && errnoCode(err) !== 'ENOTEMPTY') throw wrapError(`store layer ${ref.diffID}`, err);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  const history = flatHistory(image);
  await withLock('images', () => {
    const current = resolveImage(image.id, opts);
    writeImageRecord({ ...current, layers: [ref], history }, opts);
  }, opts);
  return [ref];
}

/**
 * Removes the layers no image and no build-cache entry (`keep`) refers to, and the scratch directories of
 * builds whose process is gone (unmounting what such a build left mounted). Returns the bytes freed.
 */
export async function pruneLayers(keep: Set<string>, opts: RootOptions = {}): Promise<number> {
  let names: string[];
  try {
    names = readdirSync(layersRoot(opts));
  } catch {
    return 0;
  }
  let freed = 0;
  for (const n of names) {
    const path = join(layersRoot(opts), n);
    const m = /^\.tmp-(\d+)-/.exec(n);
    if (m) {
      if (pidAlive(Number(m[1]))) continue;
      for (const sub of ['merged', 'view']) {
        const r = await runProgram(['umount', '-l', join(path, sub)]);
        void r;
      }
      rmSync(path, { recursive: true, force: true });
      continue;
    }
    if (keep.has(`sha256:${n}`)) continue;
    freed += directorySize(path);
    rmSync(path, { recursive: true, force: true });
  }
  return freed;
}

/** Bytes of the regular files under a directory (each inode once). */
export function directorySize(dir: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (d: string) => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = lstatSync(p);
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
        total += st.size;
      }
    }
  };
  walk(dir);
  return total;
}

/** The OCI config digest of a layered image: what identifies it (an unchanged rebuild finds its image by it). */
export function layeredImageDigest(p: { created: string; architecture: string; config: CommitOptions['config']; layers: LayerRef[]; history: HistoryEntry[] }): string {
  return sha256(ociConfigJson({ ...p, os: 'linux' }));
}

/**
 * A layered image into the store, as `poc build` and `poc commit` make one: `base`'s files (or scratch) with
 * `added` (stored layers, oldest first) flattened on top, under `name` (an older image of that name keeps its
 * files and loses the name). A failure leaves nothing staged.
 */
export async function commitLayeredImage(
  o: RootOptions,
  p: Pick<CommitOptions, 'name' | 'source' | 'config'> & { base: ImageRecord | null; added: LayerRef[]; digest: string; architecture: string; layers: LayerRef[]; history: HistoryEntry[]; created: string },
): Promise<ImageRecord> {
  const staging = createStaging(o);
  try {
    await flattenLayers(staging.rootfs, p.base ? imageRootfs(p.base, o) : null, p.added.map((l) => layerDir(l.diffID, o)));
    const { base: _base, added: _added, ...rest } = p;
    return await commitImage(staging, { ...o, ...rest, untagOld: true });
  } catch (err) {
    staging.discard();
    throw err;
  }
}
