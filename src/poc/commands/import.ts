/** `poc import FILE|DIR [NAME]`: a rootfs tarball, a `docker save` archive or an OCI image layout. */
import { stderr, stdout } from '../../common/output.js';
import { importImage } from '../images/index.js';
import { shortId, type RootOptions } from '../poc-root.js';
import { humanSize } from './format.js';
import { imagesInUse } from './images.js';

export interface ImportCommandOptions extends RootOptions {
  path: string;
  name?: string;
  force: boolean;
}

export async function importCommand(o: ImportCommandOptions): Promise<number> {
  const img = await importImage(o.path, o.name, {
    ...(o.root !== undefined ? { root: o.root } : {}),
    replace: o.force,
    inUse: imagesInUse(o),
    onProgress: (p) => {
      if (p.layers > 1) stderr(`layer ${p.layer}/${p.layers}\n`);
    },
    onWarning: (message) => stderr(`poc: warning: ${message}\n`),
  });
  stdout(`image ${img.name ?? '<none>'} ${shortId(img.id)} (${humanSize(img.size)})\n`);
  return 0;
}
