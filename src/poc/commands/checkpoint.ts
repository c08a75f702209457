/** `poc checkpoint create [--leave-running] CONTAINER NAME`, `poc checkpoint ls CONTAINER`, `poc checkpoint rm CONTAINER NAME`. */
import { stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { createCheckpoint, listCheckpoints, removeCheckpoint } from '../containers/checkpoint.js';
import { resolveContainer } from '../containers/container-store.js';
import type { RootOptions } from '../poc-root.js';
import { table } from './format.js';

export interface CheckpointCommandOptions extends RootOptions {
  /** The subcommand and its arguments. */
  args: string[];
  leaveRunning: boolean;
}

const USAGE = 'usage: poc checkpoint create [--leave-running] CONTAINER NAME | ls CONTAINER | rm CONTAINER NAME';

export async function checkpointCommand(o: CheckpointCommandOptions): Promise<number> {
  const [sub, ref, name] = o.args;
  const want = (n: number) => {
    if (o.args.length !== n) throw new PocError(`checkpoint ${sub}: ${USAGE}`);
  };
  if (o.leaveRunning && sub !== 'create') throw new PocError(`checkpoint ${sub}: --leave-running is for create`);
  switch (sub) {
    case 'create':
      want(3);
      await createCheckpoint(resolveContainer(ref!, o), name!, o.leaveRunning, o);
      stdout(`${name}\n`);
      return 0;
    case 'ls':
    case 'list':
      want(2);
      stdout(table(['CHECKPOINT NAME'], listCheckpoints(resolveContainer(ref!, o), o).map((n) => [n])));
      return 0;
    case 'rm':
    case 'remove':
      want(3);
      removeCheckpoint(resolveContainer(ref!, o), name!, o);
      stdout(`${name}\n`);
      return 0;
    default:
      throw new PocError(`checkpoint: unknown subcommand ${JSON.stringify(sub)}; ${USAGE}`);
  }
}
