/** `poc images [--format json]` and `poc rmi [-f] IMAGE...`. */
import { stdout } from '../../common/output.js';
import { listImages, removeImage, type ImageRecord, type InUse } from '../images/index.js';
import { listContainers } from '../containers/container-store.js';
import { shortId, type RootOptions } from '../poc-root.js';
import { forEachRef } from './each.js';
import { ago, humanSize, table } from './format.js';

export interface ImagesOptions extends RootOptions {
  format: 'table' | 'json';
}

function nameAndTag(img: ImageRecord): [string, string] {
  if (!img.name) return ['<none>', '<none>'];
  // Pulled by digest (`host/repo@sha256:...`): no tag, as docker lists it.
  if (img.name.includes('@')) return [img.name.slice(0, img.name.indexOf('@')), '<none>'];
  const colon = img.name.lastIndexOf(':');
  return colon > img.name.lastIndexOf('/') ? [img.name.slice(0, colon), img.name.slice(colon + 1)] : [img.name, 'latest'];
}

export function imagesCommand(o: ImagesOptions): number {
  const images = listImages(o);
  if (o.format === 'json') {
    stdout(`${JSON.stringify(images.map((i) => ({ id: i.id, name: i.name, created: i.created, size: i.size, architecture: i.architecture, os: i.os, source: i.source, config: i.config })), null, 2)}\n`);
    return 0;
  }
  stdout(table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'], images.map((i) => [...nameAndTag(i), shortId(i.id), ago(i.created), humanSize(i.size)])));
  return 0;
}

/** Which containers use an image: rmi refuses while there are any. */
export function imagesInUse(o: RootOptions): InUse {
  return (image) => listContainers(o).filter((c) => c.image.id === image.id).map((c) => c.name);
}

export interface RmiOptions extends RootOptions {
  refs: string[];
  force: boolean;
}

export async function rmiCommand(o: RmiOptions): Promise<number> {
  return forEachRef(o.refs, async (ref) => {
    const r = await removeImage(ref, { ...o, force: o.force, inUse: imagesInUse(o) });
    stdout(`${r.action === 'deleted' ? 'Deleted' : 'Untagged'}: ${r.id}\n`);
  });
}
