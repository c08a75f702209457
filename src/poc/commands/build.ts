/** `poc build`: a Dockerfile → an image (src/poc/build/). Steps and cache hits on stderr, the image id on stdout. */
import { readFileSync, statSync } from 'node:fs';
import { stderr, stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { build } from '../build/build.js';
import { buildPlatform } from '../build/platform.js';
import type { SshSource } from '../build/build.js';
import type { RootOptions } from '../poc-root.js';

export interface BuildCommandOptions extends RootOptions {
  context: string;
  file?: string;
  tags: string[];
  buildArgs: string[];
  /** --secret id=ID,src=FILE (or env=VAR), as docker buildx takes them. */
  secrets?: string[];
  /** --ssh default or ID=SOCKET, as docker buildx takes them. */
  ssh?: string[];
  target?: string;
  noCache: boolean;
  network?: string;
  /** --platform: this machine's (or a list of it), as docker buildx takes it. */
  platform?: string;
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

/**
 * `--secret id=ID,src=FILE` or `id=ID,env=VAR` (`type=file|env`, `source` for src, as buildx): the secrets a
 * RUN --mount=type=secret may read, by id. Read now, so that a missing file is an error before any step runs.
 */
export function parseSecrets(list: string[], env: NodeJS.ProcessEnv = process.env, readFile = (p: string) => readFileSync(p)): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const spec of list) {
    const kv = new Map(spec.split(',').map((f) => [f.slice(0, f.indexOf('=') < 0 ? f.length : f.indexOf('=')), f.slice(f.indexOf('=') + 1)] as const));
    const id = kv.get('id');
    const bad = (why: string) => new PocError(`build: --secret ${spec}: ${why}`);
    if (!id) throw bad('needs an id (id=ID,src=FILE or id=ID,env=VAR)');
    for (const k of kv.keys()) if (!['id', 'src', 'source', 'env', 'type'].includes(k)) throw bad(`unknown field ${k} (id, src, env, type)`);
    const type = kv.get('type') ?? (kv.has('env') ? 'env' : 'file');
    if (type === 'env') {
      const name = kv.get('env') ?? id;
      if (env[name] === undefined) throw bad(`the environment variable ${name} is not set`);
      out[id] = Buffer.from(env[name]!);
    } else if (type === 'file') {
      const src = kv.get('src') ?? kv.get('source');
      if (!src) throw bad('needs src=FILE');
      try {
        out[id] = readFile(src);
      } catch (err) {
        throw bad(`cannot read ${src}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    } else throw bad(`type=${type}: file or env`);
  }
  return out;
}

/**
 * `--ssh default` (the agent of $SSH_AUTH_SOCK) or `--ssh ID=PATH[,PATH...]`, as docker buildx takes them: by id,
 * an ssh agent's socket, or key files (which poc build loads into an ssh-agent of its own, as buildx loads them
 * into one in its process). Checked now, so that a mistake is an error before any step runs.
 */
export function parseSsh(list: string[], env: NodeJS.ProcessEnv = process.env, stat: (p: string) => { isSocket(): boolean; isFile(): boolean } = statSync): Record<string, SshSource> {
  const out: Record<string, SshSource> = {};
  for (const spec of list) {
    const eq = spec.indexOf('=');
    const id = eq < 0 ? spec : spec.slice(0, eq);
    const bad = (why: string) => new PocError(`build: --ssh ${spec}: ${why}`);
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw bad('the id is letters, digits and ._- (default, or ID=PATH)');
    if (out[id] !== undefined) throw bad(`the id ${id} is given twice`);
    const paths = eq < 0 || spec.slice(eq + 1) === '' ? [env.SSH_AUTH_SOCK ?? ''] : spec.slice(eq + 1).split(',');
    if (paths[0] === '' && paths.length === 1) throw bad('SSH_AUTH_SOCK is not set: start an ssh-agent, or give its socket or key files (ID=PATH)');
    const sockets: string[] = [];
    const keys: string[] = [];
    for (const path of paths) {
      let st;
      try {
        st = stat(path);
      } catch (err) {
        throw bad(`cannot use ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (st.isSocket()) sockets.push(path);
      else if (st.isFile()) keys.push(path);
      else throw bad(`${path} is neither an ssh agent's socket nor a key file`);
    }
    if (sockets.length > 1 || (sockets.length && keys.length)) throw bad("one agent's socket, or key files, per id");
    out[id] = sockets.length ? { socket: sockets[0]! } : { keys };
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
  // A list (buildx's multi-platform build) is refused unless every entry is this machine's platform.
  const platform = o.platform === undefined ? undefined : o.platform.split(',').map((p) => buildPlatform(p, `build: --platform ${p}`))[0];
  const r = await build({
    root: o.root,
    context: o.context,
    ...(o.file !== undefined ? { file: o.file } : {}),
    tags: o.tags,
    buildArgs: parseBuildArgs(o.buildArgs),
    secrets: parseSecrets(o.secrets ?? []),
    ssh: parseSsh(o.ssh ?? []),
    ...(o.target !== undefined ? { target: o.target } : {}),
    noCache: o.noCache,
    ...(network ? { network } : {}),
    ...(platform ? { platform } : {}),
    log: o.quiet ? () => {} : (line) => stderr(`${line}\n`),
  });
  if (!o.quiet) {
    stderr(`COMMIT ${r.image.name ?? ''} (${r.ran} steps run, ${r.cached} from the cache)\n`);
  }
  stdout(`${r.image.id}\n`);
  return 0;
}
