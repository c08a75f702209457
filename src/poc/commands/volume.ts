/** `poc volume create [--label K=V] [NAME]`, `ls [-q] [--format]`, `inspect NAME...`, `rm NAME...`, `prune [-a]`. */
import { stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { createVolume, getVolume, listVolumes, pruneVolumes, removeVolume } from '../volumes/volume-store.js';
import type { RootOptions } from '../poc-root.js';
import { forEachRef } from './each.js';
import { table } from './format.js';

export interface VolumeCommandOptions extends RootOptions {
  /** The subcommand and its arguments. */
  args: string[];
  labels: string[];
  quiet: boolean;
  all: boolean;
  format: 'table' | 'json';
}

const USAGE = 'volume create [--label K=V] [NAME] | ls [-q] [--format table|json] | inspect NAME... | rm NAME... | prune [-a]';

function labelsOf(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const eq = l.indexOf('=');
    if (eq === 0 || l === '') throw new PocError(`volume create: invalid --label ${JSON.stringify(l)}: use KEY=VALUE`);
    out[eq < 0 ? l : l.slice(0, eq)] = eq < 0 ? '' : l.slice(eq + 1);
  }
  return out;
}

export async function volumeCommand(o: VolumeCommandOptions): Promise<number> {
  const [sub, ...args] = o.args;
  const arity = (min: number, max: number) => {
    if (args.length < min || args.length > max) throw new PocError(`volume ${sub}: ${args.length < min ? 'missing argument' : `unexpected argument ${JSON.stringify(args[max])}`}; usage: poc ${USAGE}`);
  };
  switch (sub) {
    case 'create': {
      arity(0, 1);
      const v = await createVolume(args[0], { labels: labelsOf(o.labels) }, o);
      stdout(`${v.Name}\n`);
      return 0;
    }
    case 'ls':
    case 'list': {
      arity(0, 0);
      const vols = listVolumes(o);
      if (o.quiet) stdout(vols.map((v) => `${v.Name}\n`).join(''));
      else if (o.format === 'json') stdout(`${JSON.stringify(vols, null, 2)}\n`);
      else stdout(table(['DRIVER', 'VOLUME NAME'], vols.map((v) => [v.Driver, v.Name])));
      return 0;
    }
    case 'inspect': {
      arity(1, Infinity);
      stdout(`${JSON.stringify(args.map((n) => getVolume(n, o)), null, 2)}\n`);
      return 0;
    }
    case 'rm':
    case 'remove':
      arity(1, Infinity);
      return forEachRef(args, async (name) => {
        await removeVolume(name, o);
        stdout(`${name}\n`);
      });
    case 'prune': {
      arity(0, 0);
      const removed = await pruneVolumes(o.all, o);
      stdout(removed.length > 0 ? `Deleted Volumes:\n${removed.map((n) => `${n}\n`).join('')}` : '');
      return 0;
    }
    default:
      throw new PocError(`volume: ${sub === undefined ? 'missing subcommand' : `unknown subcommand ${JSON.stringify(sub)}`}; usage: poc ${USAGE}`);
  }
}
