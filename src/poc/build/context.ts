/**
 * What COPY and ADD read: the build context (less what .dockerignore excludes, with docker's own matcher, the
 * package moby's rules were ported to) or another stage's files; sources with globs (`*`, `?`, `[...]` within
 * one path component, as Go's filepath.Match); and the tar stream that carries them to the destination, whose
 * digest (without mtimes) is the step's cache input.
 */
import dockerignoreModule, { type Ignore } from '@balena/dockerignore';
import picomatch from 'picomatch';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PocError, errnoCode } from '../errors.js';
import { TAR_END } from '../images/tar.js';
import { openDecompressed } from '../images/import.js';
import { tarNode } from '../images/layers.js';

export interface SourceRoot {
  /** The directory sources are relative to. */
  dir: string;
  /** What it is, for errors: "the build context", "stage builder". */
  what: string;
  /** .dockerignore's verdict on a path relative to dir (the context only). */
  ignored?: (rel: string) => boolean;
}

export function loadContext(dir: string): SourceRoot {
  let st;
  try {
    st = statSync(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new PocError(`build context ${dir} does not exist`);
    throw err;
  }
  if (!st.isDirectory()) throw new PocError(`build context ${dir} is not a directory`);
  const ignoreFile = join(dir, '.dockerignore');
  if (!existsSync(ignoreFile)) return { dir, what: 'the build context' };
  const ig = dockerignore({ ignorecase: false }).add(readFileSync(ignoreFile, 'utf8'));
  return { dir, what: 'the build context', ignored: (rel) => rel !== '' && ig.ignores(rel) };
}

export interface Source {
  /** On disk. */
  path: string;
  /** Relative to the root (for messages). */
  rel: string;
  isDir: boolean;
}

const GLOB = /[*?[]/;

// A CommonJS module whose types declare an ES default export: at run time the default import is the factory.
const dockerignore = dockerignoreModule as unknown as (o?: { ignorecase?: boolean }) => Ignore;

/** A source path that cannot leave its root: components, no "..". */
function components(src: string): string[] {
  const parts = src.split('/').filter((p) => p !== '' && p !== '.');
  const out: string[] = [];
  for (const p of parts) {
    if (p === '..') out.pop();
    else out.push(p);
  }
  return out;
}

/** The sources a COPY/ADD argument names in root; none is an error naming it. */
export function resolveSources(root: SourceRoot, src: string, where: string): Source[] {
  const parts = components(src);
  let found: string[][] = [[]];
  for (const part of parts) {
    const next: string[][] = [];
    for (const prefix of found) {
      const dir = join(root.dir, ...prefix);
      if (!GLOB.test(part)) {
        next.push([...prefix, part]);
        continue;
      }
      let names: string[] = [];
      try {
        names = readdirSync(dir).sort();
      } catch {
        continue;
      }
      const match = picomatch(part, { dot: true });
      for (const n of names) if (match(n)) next.push([...prefix, n]);
    }
    found = next;
  }
  const out: Source[] = [];
  for (const f of found) {
    const rel = f.join('/');
    if (root.ignored?.(rel)) continue;
    const path = join(root.dir, rel);
    let st;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    out.push({ path, rel, isDir: st.isDirectory() });
  }
  if (out.length === 0) throw new PocError(`${where}: ${JSON.stringify(src)} not found in ${root.what}`);
  return out;
}

/** One item to put at the destination: a source and its name there ('' for a directory's contents). */
export interface CopyItem {
  source: Source;
  name: string;
}

export interface CopyTarOptions {
  root: SourceRoot;
  owner?: { uid: number; gid: number };
  /** --chmod: the mode of every file and directory copied. */
  mode?: number;
  /** 0 for the cache digest. */
  mtime?: number;
}

/** The items as one tar stream; the context's ignored files are left out of copied directories. */
export async function* copyTar(items: CopyItem[], o: CopyTarOptions): AsyncGenerator<Buffer> {
  const filter = o.root.ignored ? (path: string) => !o.root.ignored!(relative(o.root.dir, path)) : undefined;
  const seen = new Map<string, string>();
  for (const item of items) {
    // A top-level source is followed if it is a symlink, as docker does; what is inside a directory is not.
    const st = statSync(item.source.path);
    yield* tarNode(
      item.source.path,
      item.name,
      {
        owner: o.owner ?? { uid: 0, gid: 0 },
        xattrs: false,
        ...(filter ? { filter } : {}),
        ...(o.mtime !== undefined ? { mtime: o.mtime } : {}),
        ...(o.mode !== undefined ? { mode: o.mode } : {}),
      },
      seen,
      st,
    );
  }
  yield TAR_END;
}

/** sha256 of what the stream holds: the cache's digest of a COPY's inputs. */
export async function digestStream(chunks: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const c of chunks) h.update(c);
  return `sha256:${h.digest('hex')}`;
}

/** Whether a local file is a tar archive, plain or compressed as import reads them: ADD unpacks those. */
export async function isArchive(path: string): Promise<boolean> {
  const st = statSync(path);
  if (!st.isFile() || st.size < 32) return false;
  const first = Buffer.alloc(0);
  let head = first;
  const it = openDecompressed(path)[Symbol.asyncIterator]();
  try {
    while (head.length < 512) {
      const r = await it.next();
      if (r.done) break;
      head = Buffer.concat([head, r.value]);
    }
  } catch {
    return false;
  } finally {
    await it.return?.(undefined);
  }
  return head.length >= 512 && head.subarray(257, 262).toString('latin1') === 'ustar';
}
