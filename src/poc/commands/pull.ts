/** `poc pull NAME[:TAG|@DIGEST]`. */
import { stderr, stdout } from '../../common/output.js';
import type { ConnectOptions } from '../registry/connect.js';
import { progressFor } from '../registry/progress.js';
import { pullImage } from '../registry/pull.js';
import { shortId, type RootOptions } from '../poc-root.js';
import { imagesInUse } from './images.js';

export interface PullCommandOptions extends RootOptions, ConnectOptions {
  reference: string;
  quiet: boolean;
  /** Every platform of an index (for a push of the whole index). */
  allPlatforms?: boolean;
}

export async function pullCommand(o: PullCommandOptions): Promise<number> {
  const progress = o.quiet ? undefined : progressFor();
  const r = await pullImage(o.reference, {
    ...o,
    inUse: imagesInUse(o),
    ...(progress ? { progress } : {}),
    ...(o.quiet ? {} : { onTry: (ref: string) => stderr(`Trying to pull ${ref}...\n`) }),
  });
  if (!o.quiet) {
    stderr(`Digest: ${r.digest}\n`);
    stderr(r.upToDate ? `Status: Image is up to date for ${r.reference}\n` : `Status: Downloaded newer image for ${r.reference}\n`);
  }
  stdout(`${o.quiet ? r.image.id : `${r.image.name ?? '<none>'} ${shortId(r.image.id)}`}\n`);
  return 0;
}
