/** `poc push IMAGE [DESTINATION]`. */
import { stderr, stdout } from '../../common/output.js';
import type { ConnectOptions } from '../registry/connect.js';
import { progressFor } from '../registry/progress.js';
import { pushImage } from '../registry/push.js';
import type { RootOptions } from '../poc-root.js';

export interface PushCommandOptions extends RootOptions, ConnectOptions {
  image: string;
  destination: string;
  quiet: boolean;
  chunkSize?: number;
}

export async function pushCommand(o: PushCommandOptions): Promise<number> {
  const progress = o.quiet ? undefined : progressFor();
  const r = await pushImage(o.image, o.destination, { ...o, ...(progress ? { progress } : {}) });
  if (!o.quiet) stderr(`Pushed ${r.reference}\n`);
  stdout(`${r.digest}\n`);
  return 0;
}
