/** `poc build`: a Dockerfile → an image (src/poc/build/). Steps and cache hits on stderr, the image id on stdout. */
import { stderr, stdout } from '../../cli/output.js';
import { PocError } from '../errors.js';
import { build } from '../build/build.js';
import type { RootOptions } from '../poc-root.js';

export interface BuildCommandOptions extends RootOptions {
  context: string;
  file?: string;
  tags: string[];
  buildArgs: string[];
  target?: string;
  noCache: boolean;
  network?: string;
  quiet: boolean;
}

/** `--build-arg K=V`, or `K` alone: the value from poc's environment, as docker takes it. */
export function parseBuildArgs(list: string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    const eq = a.indexOf('=');
    const k = eq === -1 ? a : a.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new PocError(`build: invalid --build-arg ${JSON.stringify(a)}: NAME=VALUE`);
    if (eq === -1) {
      if (env[k] !== undefined) out[k] = env[k]!;
    } else out[k] = a.slice(eq + 1);
  }
  return out;
}

export async function buildCommand(o: BuildCommandOptions): Promise<number> {
  let network: 'none' | 'host' | 'bridge' | undefined;
  if (o.network !== undefined) {
    const n = o.network === 'default' ? 'bridge' : o.network;
    if (n !== 'none' && n !== 'host' && n !== 'bridge') throw new PocError(`build: invalid --network ${JSON.stringify(o.network)}: none, bridge or host`);
    network = n;
  }
  const r = await build({
    root: o.root,
    context: o.context,
    ...(o.file !== undefined ? { file: o.file } : {}),
    tags: o.tags,
    buildArgs: parseBuildArgs(o.buildArgs),
    ...(o.target !== undefined ? { target: o.target } : {}),
    noCache: o.noCache,
    ...(network ? { network } : {}),
    log: o.quiet ? () => {} : (line) => stderr(`${line}\n`),
  });
  if (!o.quiet) {
    stderr(`COMMIT ${r.image.name ?? ''} (${r.ran} steps run, ${r.cached} from the cache)\n`);
  }
  stdout(`${r.image.id}\n`);
  return 0;
}
