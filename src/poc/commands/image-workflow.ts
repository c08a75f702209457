/** `poc tag`, `poc save`, `poc load`, `poc history` and `poc image inspect`: images after they are made. */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { importImage, resolveImage, tagImage, type ImageRecord } from '../images/index.js';
import { imageLayers } from '../images/layers.js';
import { imageConfigOf, saveImages, type SaveFormat } from '../images/save.js';
import { sha256 } from '../images/oci.js';
import { pocPaths, shortId, type RootOptions } from '../poc-root.js';
import { forEachRef } from './each.js';
import { ago, humanSize, table, truncate } from './format.js';
import { imagesInUse } from './images.js';

export async function tagCommand(o: RootOptions & { source: string; target: string }): Promise<number> {
  const image = resolveImage(o.source, o);
  await tagImage(image, o.target.replace(/:latest$/, ''), { ...o, inUse: imagesInUse(o) });
  return 0;
}

export async function saveCommand(o: RootOptions & { refs: string[]; output?: string; format: string }): Promise<number> {
  if (o.format !== 'docker-archive' && o.format !== 'oci-archive') throw new PocError(`save: invalid --format ${JSON.stringify(o.format)}: docker-archive or oci-archive`);
  if (o.output === undefined && process.stdout.isTTY) throw new PocError('save: refusing to write an archive to a terminal: use -o FILE or redirect');
  const images = o.refs.map((r) => resolveImage(r, o));
  await saveImages(images, o.format as SaveFormat, o.output, o);
  return 0;
}

/** Every image an archive holds is loaded (docker-archive: each manifest entry; OCI: each index entry). */
export async function loadCommand(o: RootOptions & { input?: string; quiet: boolean }): Promise<number> {
  let input = o.input;
  let spool: string | undefined;
  if (input === undefined) {
    if (process.stdin.isTTY) throw new PocError('load: no archive: use -i FILE or give it on standard input');
    // The archive is read twice (its names, then each image): standard input is kept in a file first.
    const { mkdirSync, createWriteStream } = await import('node:fs');
    const dir = join(pocPaths(o).images, `.tmp-${process.pid}-load`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    spool = dir;
    input = join(dir, 'archive');
    const out = createWriteStream(input);
    await pipeline(process.stdin, out);
  }
  try {
    const { readArchiveNames } = await import('../images/load.js');
    const names = await readArchiveNames(input);
    const loaded: ImageRecord[] = [];
    for (const name of names.length ? names : [undefined]) {
      const img = await importImage(input, name, { ...o, replace: true, inUse: imagesInUse(o) });
      // Its layer now (a digest of its files, once), as docker and buildah keep layers when they load: a build
      // FROM it, a save or a push then starts at once.
      await imageLayers(img, o);
      loaded.push(img);
    }
    if (!o.quiet) for (const img of loaded) stdout(`Loaded image: ${img.name ?? img.id}\n`);
  } finally {
    if (spool) rmSync(spool, { recursive: true, force: true });
  }
  return 0;
}

export async function historyCommand(o: RootOptions & { ref: string; noTrunc: boolean; format: 'table' | 'json' }): Promise<number> {
  const image = resolveImage(o.ref, o);
  const history = image.history ?? [{ created: image.created, created_by: `poc ${image.source.kind}` }];
  const layers = image.layers ?? [];
  let li = 0;
  const rows = history.map((h, i) => {
    const layer = h.empty_layer ? null : (layers[li++] ?? null);
    return { id: i === history.length - 1 ? image.id : '<missing>', created: h.created, createdBy: h.created_by, size: layer?.size ?? 0, comment: h.comment ?? '' };
  }).reverse();
  if (o.format === 'json') {
    stdout(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  stdout(table(['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], rows.map((r) => [
    r.id === '<missing>' ? r.id : shortId(r.id), ago(r.created), o.noTrunc ? r.createdBy : truncate(r.createdBy, 45), humanSize(r.size), r.comment,
  ])));
  return 0;
}

export async function imageInspectCommand(o: RootOptions & { refs: string[] }): Promise<number> {
  const out: unknown[] = [];
  const code = await forEachRef(o.refs, async (ref) => {
    const i = resolveImage(ref, o);
    const layers = i.layers;
    out.push({
      Id: i.id,
      Digest: i.digest ?? (layers ? sha256((await imageConfigOf(i, o)).json) : null),
      RepoTags: i.name ? [i.name.includes(':') ? i.name : `${i.name}:latest`] : [],
      Created: i.created,
      Size: i.size,
      Architecture: i.architecture,
      Os: i.os,
      Config: i.config,
      RootFS: { Type: 'layers', Layers: (layers ?? []).map((l) => l.diffID) },
      History: i.history ?? [],
      Source: i.source,
    });
  });
  stdout(`${JSON.stringify(out, null, 2)}\n`);
  return code;
}
