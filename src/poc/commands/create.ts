/** `poc create [flags] IMAGE [CMD...]`: makes the container without starting it; prints its id. */
import { stdout } from '../../common/output.js';
import { createContainer } from '../containers/provision.js';
import type { RunFlags } from '../containers/options.js';
import type { RootOptions } from '../poc-root.js';

export interface CreateCommandOptions extends RootOptions {
  flags: RunFlags;
}

export async function createCommand(o: CreateCommandOptions): Promise<number> {
  const c = await createContainer(o.flags, o);
  stdout(`${c.id}\n`);
  return 0;
}
