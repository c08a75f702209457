/**
 * `poc commit`, `poc diff`, `poc export`, `poc cp`, `poc image prune`, `poc builder prune` and `poc system df`:
 * containers' files and the space images, layers, containers and the build cache take.
 */
import { stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { applyConfigInstruction } from '../build/build.js';
import { cacheClear, cachedLayers } from '../build/cache.js';
import { parseDockerfile } from '../build/dockerfile.js';
import { envLookup } from '../build/expand.js';
import { commitContainer, containerChanges, copyFromContainer, copyToContainer, withContainerView } from '../containers/filesystem.js';
import { containerPaths, containerStatus, listContainers, resolveContainer } from '../containers/container-store.js';
import { directorySize, layersRoot, pruneLayers, tarDirectory } from '../images/layers.js';
import { writeArchive } from '../images/save.js';
import { listImages, pruneImages, removeImage, resolveImage } from '../images/image-store.js';
import type { RootOptions } from '../poc-root.js';
import { humanSize, table } from './format.js';
import { imagesInUse } from './images.js';

const COMMIT_CHANGES = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

export async function commitCommand(o: RootOptions & { ref: string; name?: string; changes: string[]; message?: string; author?: string }): Promise<number> {
  const c = resolveContainer(o.ref, o);
  let config = structuredClone(resolveImage(c.image.id, o).config);
  for (const change of o.changes) {
    const parsed = parseDockerfile(`FROM scratch\n${change}\n`, '--change');
    const ins = parsed.stages[0]!.instructions[0];
    if (!ins || !COMMIT_CHANGES.has(ins.keyword)) throw new PocError(`commit: --change ${JSON.stringify(change)}: one of ${[...COMMIT_CHANGES].join(', ')}`);
    if (ins.keyword === 'WORKDIR') config = { ...config, WorkingDir: ins.words[0]! };
    else config = applyConfigInstruction(config, ins, envLookup(config.Env), true).config;
  }
  const image = await commitContainer(c, {
    root: o.root,
    name: o.name ? o.name.replace(/:latest$/, '') : null,
    config,
    ...(o.message ? { comment: o.message } : {}),
    ...(o.author ? { author: o.author } : {}),
  });
  stdout(`${image.id}\n`);
  return 0;
}

export async function diffCommand(o: RootOptions & { ref: string }): Promise<number> {
  const c = resolveContainer(o.ref, o);
  for (const ch of await containerChanges(c, o)) stdout(`${ch.kind} ${ch.path}\n`);
  return 0;
}

export async function exportCommand(o: RootOptions & { ref: string; output?: string }): Promise<number> {
  if (o.output === undefined && process.stdout.isTTY) throw new PocError('export: refusing to write an archive to a terminal: use -o FILE or redirect');
  const c = resolveContainer(o.ref, o);
  await withContainerView(c, false, (root) => writeArchive(tarDirectory(root, { xattrs: true }), o.output, 'export'), o);
  return 0;
}

/** `poc cp CONTAINER:SRC DEST` or `poc cp SRC CONTAINER:DEST`, as docker. */
export async function cpCommand(o: RootOptions & { src: string; dest: string }): Promise<number> {
  const split = (s: string) => {
    const m = /^([^:/][^:]*):(.*)$/.exec(s);
    return m ? { container: m[1]!, path: m[2]! === '' ? '/' : m[2]! } : null;
  };
  const from = split(o.src);
  const to = split(o.dest);
  if ((from === null) === (to === null)) throw new PocError('cp: one side must be CONTAINER:PATH and the other a local path');
  if (from) await copyFromContainer(resolveContainer(from.container, o), from.path, o.dest, o);
  else await copyToContainer(resolveContainer(to!.container, o), o.src, to!.path, o);
  return 0;
}

/** Layers neither an image nor the build cache refers to. */
export async function pruneUnusedLayers(o: RootOptions): Promise<number> {
  const keep = cachedLayers(o);
  for (const i of listImages(o)) for (const l of i.layers ?? []) keep.add(l.diffID);
  return pruneLayers(keep, o);
}

/** `poc image prune [-a]`: untagged images no container uses (-a: every image no container uses), then unused layers. */
export async function imagePruneCommand(o: RootOptions & { all: boolean }): Promise<number> {
  const inUse = imagesInUse(o);
  const removed = await pruneImages({ ...o, inUse });
  if (o.all) {
    for (const image of listImages(o)) {
      if ((await inUse(image)).length > 0) continue;
      await removeImage(image.id, { ...o, inUse });
      removed.push(image.id);
    }
  }
  for (const id of removed) stdout(`Deleted: ${id}\n`);
  const freed = await pruneUnusedLayers(o);
  stdout(`Total reclaimed space (layers): ${humanSize(freed)}\n`);
  return 0;
}

/** `poc builder prune`: forgets the build cache and removes the layers only it kept. */
export async function builderPruneCommand(o: RootOptions): Promise<number> {
  cacheClear(o);
  const freed = await pruneUnusedLayers(o);
  stdout(`Total reclaimed space: ${humanSize(freed)}\n`);
  return 0;
}

/** `poc system df`: images, containers and the build cache, as docker shows them. */
export async function systemDfCommand(o: RootOptions): Promise<number> {
  const images = listImages(o);
  const containers = listContainers(o);
  const used = new Set(containers.map((c) => c.image.id));
  const imageSize = images.reduce((n, i) => n + i.size, 0);
  const unusedImages = images.filter((i) => !used.has(i.id)).reduce((n, i) => n + i.size, 0);
  const containerSizes = containers.map((c) => directorySize(containerPaths(c.id, o).upper));
  const running = containers.filter((c) => containerStatus(c.id, o).status === 'running');
  const stoppedSize = containers.reduce((n, c, i) => n + (running.includes(c) ? 0 : containerSizes[i]!), 0);
  const imageLayers = new Set(images.flatMap((i) => (i.layers ?? []).map((l) => l.diffID)));
  let cacheSize = 0;
  let cacheCount = 0;
  for (const d of cachedLayers(o)) {
    if (imageLayers.has(d)) continue;
    cacheCount++;
    cacheSize += directorySize(`${layersRoot(o)}/${d.slice('sha256:'.length)}`);
  }
  const pct = (part: number, whole: number) => (whole > 0 ? ` (${Math.round((part / whole) * 100)}%)` : '');
  stdout(
    table(['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'], [
      ['Images', String(images.length), String(images.filter((i) => used.has(i.id)).length), humanSize(imageSize), `${humanSize(unusedImages)}${pct(unusedImages, imageSize)}`],
      ['Containers', String(containers.length), String(running.length), humanSize(containerSizes.reduce((a, b) => a + b, 0)), humanSize(stoppedSize)],
      ['Build Cache', String(cacheCount), '0', humanSize(cacheSize), humanSize(cacheSize)],
    ]),
  );
  return 0;
}
