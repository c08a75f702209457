/**
 * A container's files from outside: its changes (`poc diff`, read from its overlay's upper directory), those
 * changes as a new image (`poc commit`: the upper directory becomes a layer on the image's), the whole view as a
 * tar (`poc export`) and copies in and out (`poc cp`). A running container's view is its mounted rootfs; a
 * stopped one's is mounted for the operation (read-only, or with its own upper directory when copying in) and
 * unmounted after.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, posix } from 'node:path';
import { PocError, wrapError } from '../errors.js';
import { resolveInRoot } from '../root-path.js';
import { copyTar } from '../build/context.js';
import { mountOverlay, overlayMountOptions } from '../build/step-fs.js';
import { applyLayer } from '../images/layer.js';
import { commitLayeredImage, imageLayers, layeredImageDigest, layerScratch, storeLayer } from '../images/layers.js';
import { imageRootfs, resolveImage, type ImageConfig, type ImageRecord } from '../images/image-store.js';
import { getXattr } from '../images/xattr.js';
import { runProgram } from '../spawn.js';
import { readdirOr, type RootOptions } from '../poc-root.js';
import { isMounted, unmountRootfs } from './rootfs.js';
import { containerPaths, type ContainerRecord } from './container-store.js';

/** The image a container was made from (its files are still there: rmi of a used image only untags it). */
function imageOf(c: ContainerRecord, opts: RootOptions): ImageRecord {
  return resolveImage(c.image.id, opts);
}

/**
 * Runs fn on the container's whole file tree: the mounted rootfs while it runs; else an overlay of its changes
 * on its image, mounted for fn (writable when `write`, its changes going to the container's own upper directory).
 */
export async function withContainerView<T>(c: ContainerRecord, write: boolean, fn: (root: string) => Promise<T>, opts: RootOptions = {}): Promise<T> {
  const paths = containerPaths(c.id, opts);
  if (isMounted(paths.rootfs)) return fn(paths.rootfs);
  const scratch = layerScratch(opts);
  const view = join(scratch, 'view');
  mkdirSync(view);
  const lower = imageRootfs(imageOf(c, opts), opts);
  try {
    mkdirSync(paths.upper, { recursive: true });
    mkdirSync(paths.work, { recursive: true });
    const options = write ? overlayMountOptions([lower], { upper: paths.upper, work: paths.work }) : overlayMountOptions([paths.upper, lower]);
    await mountOverlay(view, options);
    try {
      return await fn(view);
    } finally {
      await unmountRootfs(view);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export interface Change {
  kind: 'A' | 'C' | 'D';
  path: string;
}

/** `poc diff`: what the container added (A), changed (C) and deleted (D), as docker lists them, sorted by path. */
export async function containerChanges(c: ContainerRecord, opts: RootOptions = {}): Promise<Change[]> {
  const upper = containerPaths(c.id, opts).upper;
  const lower = imageRootfs(imageOf(c, opts), opts);
  const out: Change[] = [];
  const walk = async (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(join(upper, rel));
    } catch {
      return;
    }
    for (const n of names) {
      const r = `${rel}/${n}`;
      const st = lstatSync(join(upper, r));
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ kind: 'D', path: r });
        continue;
      }
      out.push({ kind: existsSync(join(lower, r)) || lstatOrNull(join(lower, r)) ? 'C' : 'A', path: r });
      if (st.isDirectory()) {
        if ((await getXattr(join(upper, r), 'trusted.overlay.opaque'))?.toString() === 'y') {
          // Emptied and made again: what the image had there is gone.
          for (const gone of readdirOr(join(lower, r))) if (!existsSync(join(upper, r, gone))) out.push({ kind: 'D', path: `${r}/${gone}` });
        }
        await walk(r);
      }
    }
  };
  await walk('');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function lstatOrNull(p: string) {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

export interface CommitContainerOptions extends RootOptions {
  name: string | null;
  /** The container's config changes after the image's (commit -c), already applied by the caller. */
  config: ImageConfig;
  comment?: string;
  author?: string;
}

/** `poc commit`: the container's changes as a layer on its image's layers, with the given config. */
export async function commitContainer(c: ContainerRecord, o: CommitContainerOptions): Promise<ImageRecord> {
  const base = imageOf(c, o);
  const baseLayers = await imageLayers(base, o);
  const fresh = resolveImage(base.id, o);
  const scratch = layerScratch(o);
  let layer;
  try {
    // A copy: the container keeps its own upper directory (cp -a keeps the whiteouts and opaque marks).
    const r = await runProgram(['cp', '-a', containerPaths(c.id, o).upper, join(scratch, 'diff')]);
    if (r.code !== 0) throw new PocError(`commit: copy the changes of ${c.name}: ${r.stderr.trim()}`);
    layer = readdirSync(join(scratch, 'diff')).length ? await storeLayer(join(scratch, 'diff'), o) : null;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const created = new Date().toISOString();
  const layers = layer ? [...baseLayers, layer] : baseLayers;
  const history = [
    ...(fresh.history ?? []),
    { created, created_by: `poc commit ${c.name}`, ...(o.comment ? { comment: o.comment } : {}), ...(layer ? {} : { empty_layer: true }) },
  ];
  return commitLayeredImage(o, {
    name: o.name,
    source: { kind: 'commit' },
    config: o.config,
    base,
    added: layer ? [layer] : [],
    digest: layeredImageDigest({ created, architecture: base.architecture, config: o.config, layers, history }),
    architecture: base.architecture,
    layers,
    history,
    created,
  });
}

/** The container's user-visible path inside `root`, its symbolic links resolved within it. */
function inside(root: string, p: string): string {
  if (!p.startsWith('/')) p = `/${p}`;
  return resolveInRoot(root, posix.normalize(p));
}

/** `poc cp CONTAINER:SRC DEST`: as cp -a (owners kept), a directory with its contents. */
export async function copyFromContainer(c: ContainerRecord, src: string, dest: string, opts: RootOptions = {}): Promise<void> {
  await withContainerView(c, false, async (root) => {
    const from = inside(root, src);
    if (!existsSync(from)) throw new PocError(`cp: ${src}: no such file or directory in container ${c.name}`);
    let target = dest;
    if (existsSync(dest) && statSync(dest).isDirectory()) target = join(dest, basename(from));
    const r = await runProgram(['cp', '-a', '--', from, target]);
    if (r.code !== 0) throw new PocError(`cp ${c.name}:${src} ${dest}: ${r.stderr.trim().replace(/^cp: /, '')}`);
  }, opts);
}

/** `poc cp SRC CONTAINER:DEST`: owned by root in the container, as docker does without -a; never through a symlink out. */
export async function copyToContainer(c: ContainerRecord, src: string, dest: string, opts: RootOptions = {}): Promise<void> {
  let st;
  try {
    st = statSync(src);
  } catch (err) {
    throw wrapError(`cp ${src}`, err);
  }
  await withContainerView(c, true, async (root) => {
    const to = inside(root, dest);
    const intoDir = dest.endsWith('/') || (existsSync(to) && statSync(to).isDirectory());
    const dir = intoDir ? to : dirname(to);
    const name = intoDir ? basename(src.replace(/\/+$/, '')) : basename(to);
    if (!existsSync(dir)) throw new PocError(`cp: ${dirname(dest)}: no such directory in container ${c.name}`);
    const item = { source: { path: src, rel: basename(src), isDir: st.isDirectory() }, name };
    await applyLayer(dir, copyTar([item], { root: { dir: dirname(src), what: 'the host' } }), { chown: true });
  }, opts);
}
