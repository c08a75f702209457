/**
 * `extends:` (pure, given a way to open a file): a service built on another, of the same file or of
 * `extends.file`, as compose-go's loader/extends.go does it. The base is resolved first (it may extend another in
 * turn), then the service's own keys are laid over it by the rules of several -f files (merge.ts). A base from
 * another file has its relative paths resolved against that file's directory; `extends.file` itself is relative
 * to the directory of the file that names it (the project's, for the project's files). A cycle is an error that
 * names it.
 */
import { dirname } from 'node:path';
import { PocError } from '../errors.js';
import { resolvePath } from './files.js';
import type { Lookup } from './interpolate.js';
import { mergeService } from './merge.js';
import type { ServiceSpec } from './model.js';
import type { Where } from './normalize.js';

type Raw = Record<string, any>;

/** What relative paths and variables mean in a file: the project's, an included project's, an extended file's. */
export interface FileScope {
  workingDir: string;
  lookup: Lookup;
  home?: string;
}

/** A compose file parsed, interpolated and checked against the schema. */
export interface SourceFile {
  path: string;
  value: Record<string, unknown>;
  where: Where;
}

export interface Sources {
  /** Opens a file named by `from` (a key's location, for the error when it cannot be read). */
  open: (path: string, lookup: Lookup, from: string) => SourceFile;
  /** One service of a file as it stands, its own keys only. */
  normalizeService: (file: SourceFile, scope: FileScope, name: string) => Partial<ServiceSpec>;
}

export function extendedService(src: Sources, file: SourceFile, scope: FileScope, name: string, trail: string[] = []): Partial<ServiceSpec> {
  const raw = (((file.value.services ?? {}) as Raw)[name] ?? {}) as Raw;
  const own = src.normalizeService(file, scope, name);
  if (raw.extends === undefined) return own;
  const at = ['services', name, 'extends'];
  const ext = raw.extends as string | { service: string; file?: string };
  const ref = typeof ext === 'string' ? ext : String(ext.service);
  let base = file;
  let baseScope = scope;
  if (typeof ext === 'object' && ext.file !== undefined) {
    const path = resolvePath(String(ext.file), scope.workingDir, scope.home);
    base = src.open(path, scope.lookup, file.where([...at, 'file']));
    baseScope = { ...scope, workingDir: dirname(path) };
  }
  if (!Object.hasOwn((base.value.services ?? {}) as Raw, ref)) {
    throw new PocError(`${file.where(at)}: cannot extend service ${JSON.stringify(name)}: service ${JSON.stringify(ref)} not found in ${base.path}`);
  }
  const chain = [...trail, `${file.path}\0${name}`];
  const key = `${base.path}\0${ref}`;
  if (chain.includes(key)) {
    const shown = (k: string) => k.split('\0')[1]!;
    throw new PocError(`${file.where(at)}: the services extend each other in a cycle: ${[...chain.slice(chain.indexOf(key)), key].map(shown).join(' -> ')}`);
  }
  return mergeService(extendedService(src, base, baseScope, ref, chain), own);
}
