/**
 * Secrets and configs, as docker compose runs them without a swarm (pure). A top-level secret or config takes
 * its value from a host file (`file:`, relative to the project directory), an environment variable
 * (`environment:`, the process's or .env's) or, for a config, `content:`. A service's `secrets:`/`configs:`
 * (short syntax: the name; long: source, target, uid, gid, mode) puts it at /run/secrets/NAME (a relative
 * target under /run/secrets too) or, for a config, at /NAME (a relative target under /).
 *
 * How poc mounts them (docker compose's pkg/compose/create.go and secrets.go):
 * - a host file is bound read-only at the target, so the container sees it as it changes;
 * - a value from a variable or content is given whole: written in the container's directory with the owner
 *   (uid, gid; default 0) and mode (default 0444, as docker compose's) and bound read-only
 *   (containers/container-files.ts);
 * - a host file with uid, gid or mode is given whole too, with them: docker compose ignores them for a file
 *   (with a warning), but the Compose Specification says what they mean, and a copy is the only way to honour
 *   them without changing the user's file.
 * `external:` names a swarm's secret or config, which poc has not: refused, as docker compose refuses it.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { PocError } from '../errors.js';
import type { ContainerFile } from '../containers/container-files.js';
import { resolvePath } from './files.js';
import type { FileGrant, SharedFileSpec } from './model.js';
import type { NormalizeContext } from './normalize.js';

export type FileKind = 'secret' | 'config';

type Raw = Record<string, any>;

const KEYS: Record<FileKind, string[]> = {
  secret: ['name', 'file', 'environment', 'external', 'labels'],
  config: ['name', 'file', 'environment', 'content', 'external', 'labels'],
};

/** The directory a target without a leading / goes under. */
const BASE: Record<FileKind, string> = { secret: '/run/secrets/', config: '/' };

/** Docker compose's default mode for a file it gives whole (secrets and configs alike). */
export const DEFAULT_MODE = 0o444;

function unsupported(ctx: NormalizeContext, path: Array<string | number>, why: string): PocError {
  return new PocError(`${ctx.where(path)}: poc compose does not support the key ${JSON.stringify(path[path.length - 1])} (${why})`);
}

/** A top-level `secrets:` or `configs:` entry. */
export function normalizeSharedFile(kind: FileKind, key: string, raw: Raw, ctx: NormalizeContext): SharedFileSpec {
  const at: Array<string | number> = [`${kind}s`, key];
  for (const k of Object.keys(raw)) {
    if (k.startsWith('x-') || KEYS[kind].includes(k)) continue;
    throw unsupported(ctx, [...at, k], k === 'driver' || k === 'driver_opts' || k === 'template_driver' ? `${kind} drivers are a swarm's` : `a ${kind} of poc's is a file, an environment variable${kind === 'config' ? ' or content' : ''}`);
  }
  if (raw.external !== undefined && raw.external !== false) {
    throw unsupported(ctx, [...at, 'external'], `an external ${kind} is a swarm's, and poc has no swarm: give it a file or an environment variable`);
  }
  const sources = ['file', 'environment', 'content'].filter((k) => raw[k] !== undefined);
  const list = kind === 'secret' ? '`file` or `environment`' : '`file`, `environment` or `content`';
  if (sources.length === 0) throw new PocError(`${ctx.where(at)}: the ${kind} ${JSON.stringify(key)} needs one of ${list}`);
  if (sources.length > 1) throw new PocError(`${ctx.where([...at, sources[1]!])}: the ${kind} ${JSON.stringify(key)} has both ${sources.join(' and ')}: give one of ${list}`);
  const source = sources[0]!;
  const value = String(raw[source]);
  const where = ctx.where([...at, source]);
  if (source === 'file') {
    if (value === '') throw new PocError(`${where}: the file is empty: give a path`);
    return { file: resolvePath(value, ctx.workingDir, ctx.home), at: where };
  }
  if (source === 'environment') {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) throw new PocError(`${where}: invalid variable name ${JSON.stringify(value)}`);
    return { environment: value, at: where };
  }
  return { content: value, at: where };
}

/** A number the file gives as such or as a string of digits (uid, gid). */
function idField(v: unknown, ctx: NormalizeContext, path: Array<string | number>): number {
  const s = String(v);
  if (!/^[0-9]+$/.test(s) || Number(s) > 0xfffffffe) throw new PocError(`${ctx.where(path)}: invalid ${path[path.length - 1]} ${JSON.stringify(v)}: a number (the owner inside the container)`);
  return Number(s);
}

/**
 * A mode: octal, as docker compose reads it. YAML 1.2 (the `yaml` package's) reads `0440` as the decimal 440,
 * where compose's Go YAML reads it as octal: so a number is taken from its source text (`0440`, `0o440`), and a
 * string (`"0440"`, or what a variable gave) is octal too. Permission and set-id bits only.
 */
export function parseMode(v: unknown, sourceText: string | undefined, ctx: NormalizeContext, path: Array<string | number>): number {
  const bad = () => new PocError(`${ctx.where(path)}: invalid mode ${JSON.stringify(typeof v === 'number' ? (sourceText ?? v) : v)}: an octal number from 0 to 07777, such as 0440`);
  let mode: number;
  if (typeof v === 'number') {
    const text = (sourceText ?? '').trim();
    if (/^0o[0-7]+$/i.test(text)) mode = parseInt(text.slice(2), 8);
    else if (/^0[0-9]+$/.test(text)) mode = /[89]/.test(text) ? NaN : parseInt(text, 8);
    else if (/^[0-9]+$/.test(text) || sourceText === undefined) mode = v; // a decimal, as compose's Go YAML reads it
    else throw bad();
  } else {
    const s = String(v).trim();
    if (!/^(0o)?[0-7]+$/i.test(s)) throw bad();
    mode = parseInt(s.replace(/^0o/i, ''), 8);
  }
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw bad();
  return mode;
}

/** A service's `secrets:` or `configs:` list, short or long syntax. */
export function normalizeGrants(kind: FileKind, list: unknown[], ctx: NormalizeContext, at: Array<string | number>, sourceText: (path: Array<string | number>) => string | undefined): FileGrant[] {
  const grants = list.map((item, i): FileGrant => {
    const path = [...at, i];
    if (typeof item === 'string') return { source: item, target: `${BASE[kind]}${item}` };
    const r = item as Raw;
    if (r.source === undefined) throw new PocError(`${ctx.where(path)}: a ${kind} needs its source (the name of a top-level ${kind})`);
    const source = String(r.source);
    const g: FileGrant = { source, target: grantTarget(kind, source, r.target, ctx, [...path, 'target']) };
    if (r.uid !== undefined) g.uid = idField(r.uid, ctx, [...path, 'uid']);
    if (r.gid !== undefined) g.gid = idField(r.gid, ctx, [...path, 'gid']);
    if (r.mode !== undefined) g.mode = parseMode(r.mode, sourceText([...path, 'mode']), ctx, [...path, 'mode']);
    return g;
  });
  const seen = new Map<string, number>();
  grants.forEach((g, i) => {
    if (seen.has(g.target)) throw new PocError(`${ctx.where([...at, i])}: ${g.target} is already the target of ${at[at.length - 1]} ${seen.get(g.target)}`);
    seen.set(g.target, i);
  });
  return grants;
}

function grantTarget(kind: FileKind, source: string, target: unknown, ctx: NormalizeContext, path: Array<string | number>): string {
  const t = target === undefined || target === null || target === '' ? source : String(target);
  const abs = posix.normalize(t.startsWith('/') ? t : `${BASE[kind]}${t}`);
  if (abs === '/' || abs.endsWith('/') || t.split('/').includes('..')) throw new PocError(`${ctx.where(path)}: invalid target ${JSON.stringify(t)}: a file's path in the container`);
  if (abs.includes(',')) throw new PocError(`${ctx.where(path)}: poc cannot mount a path with a comma in it (${JSON.stringify(t)})`);
  return abs;
}

export interface GrantPlan {
  /** Host files bound read-only, as `poc run --mount` fields (the same check as a flag's). */
  mounts: string[];
  /** Values given whole. */
  files: ContainerFile[];
  /** What the config hash must see of the values given whole (their digests, not the values). */
  digest: Array<{ target: string; sha256: string; uid: number; gid: number; mode: number }>;
}

export interface GrantContext {
  readBytes: (path: string) => Buffer;
  lookup: (name: string) => string | undefined;
  /** `file:` must exist: a bind or a copy of a missing file is an error at plan, before anything is made. */
  isPresent: (path: string) => boolean;
}

/** A service's secrets and configs → binds and files. */
export function planGrants(
  service: string,
  grants: Array<{ kind: FileKind; grant: FileGrant }>,
  shared: Record<FileKind, Record<string, SharedFileSpec>>,
  ctx: GrantContext,
): GrantPlan {
  const out: GrantPlan = { mounts: [], files: [], digest: [] };
  for (const { kind, grant } of grants) {
    const spec = shared[kind][grant.source];
    if (!spec) throw new PocError(`service ${service}: the ${kind} ${JSON.stringify(grant.source)} is not defined (top-level ${kind}s:)`);
    const owned = grant.uid !== undefined || grant.gid !== undefined || grant.mode !== undefined;
    let content: Buffer;
    if (spec.file !== undefined) {
      if (!ctx.isPresent(spec.file)) throw new PocError(`${spec.at}: ${spec.file}: No such file or directory (the ${kind} ${JSON.stringify(grant.source)} of service ${service})`);
      if (!owned) {
        out.mounts.push(`type=bind,source=${spec.file},target=${grant.target},readonly`);
        continue;
      }
      try {
        content = ctx.readBytes(spec.file);
      } catch (err) {
        throw new PocError(`${spec.at}: ${spec.file}: ${(err as NodeJS.ErrnoException).code === 'EISDIR' ? 'a directory: uid, gid and mode need a file' : (err as Error).message}`);
      }
    } else if (spec.environment !== undefined) {
      const value = ctx.lookup(spec.environment);
      if (value === undefined) throw new PocError(`${spec.at}: environment variable ${JSON.stringify(spec.environment)} required by the ${kind} ${JSON.stringify(grant.source)} (service ${service}) is not set`);
      content = Buffer.from(value);
    } else {
      content = Buffer.from(spec.content ?? '');
    }
    const file: ContainerFile = { target: grant.target, content, uid: grant.uid ?? 0, gid: grant.gid ?? 0, mode: grant.mode ?? DEFAULT_MODE };
    out.files.push(file);
    out.digest.push({ target: file.target, sha256: createHash('sha256').update(content).digest('hex'), uid: file.uid, gid: file.gid, mode: file.mode });
  }
  return out;
}
