/**
 * `include:` (pure, given a way to read files): other compose applications made part of this one, as
 * compose-go's loader/include.go does it. Each entry's files (`path`, one or several, relative to the including
 * project's directory; the later ones override the first) are loaded as a project of their own: their directory
 * (`project_directory`, else the first file's) resolves their relative paths, and their variables are the
 * including project's, then their `env_file`s' (default: the `.env` of their directory). Their services,
 * networks, volumes, secrets and configs join the including file's; one defined in both, differently, is an
 * error. An include cycle is an error that names it.
 */
import { dirname } from 'node:path';
import { PocError } from '../errors.js';
import { resolvePath } from './files.js';
import { parseDotenv } from './interpolate.js';
import { mergeFiles } from './merge.js';
import type { FileModel } from './normalize.js';
import type { FileScope, SourceFile, Sources } from './extends.js';

type Raw = Record<string, any>;

export interface IncludeSources extends Sources {
  /** A file's text, or undefined when it does not exist. */
  readText: (path: string) => string | undefined;
  /** The whole model of a file (its own includes and extends resolved). */
  modelOf: (file: SourceFile, scope: FileScope, trail: string[]) => FileModel;
}

const KINDS = ['services', 'networks', 'volumes', 'secrets', 'configs'] as const;

/** Adds to `model` what the file's `include:` brings. `trail`: the files that included this one. */
export function applyIncludes(src: IncludeSources, model: FileModel, file: SourceFile, scope: FileScope, trail: string[]): void {
  const entries = (file.value.include ?? []) as Array<string | Raw>;
  entries.forEach((entry, i) => {
    const at = ['include', i];
    const r: Raw = typeof entry === 'string' ? { path: entry } : entry;
    const list = (v: unknown) => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
    const paths = list(r.path).map((p) => resolvePath(p, scope.workingDir, scope.home));
    if (paths.length === 0) throw new PocError(`${file.where(at)}: an include needs its path`);
    if ([...trail, file.path].includes(paths[0]!)) {
      throw new PocError(`${file.where(at)}: the files include each other in a cycle: ${[...trail, file.path, paths[0]!].join(' -> ')}`);
    }
    const projectDir = r.project_directory !== undefined ? resolvePath(String(r.project_directory), scope.workingDir, scope.home) : dirname(paths[0]!);
    const envFiles = r.env_file !== undefined ? list(r.env_file).map((p) => resolvePath(p, scope.workingDir, scope.home)) : [`${projectDir}/.env`];
    const fromFiles: Record<string, string> = {};
    for (const f of envFiles) {
      const text = src.readText(f);
      if (text === undefined) {
        if (r.env_file === undefined) continue; // the default .env is optional
        throw new PocError(`${file.where([...at, 'env_file'])}: ${f}: No such file or directory`);
      }
      Object.assign(fromFiles, parseDotenv(text, f, (n) => scope.lookup(n) ?? fromFiles[n]));
    }
    // The including project's variables first, as compose-go's Mapping.Merge keeps what is already set.
    const sub: FileScope = { ...scope, workingDir: projectDir, lookup: (n) => scope.lookup(n) ?? fromFiles[n] };
    const models = paths.map((p, j) => src.modelOf(src.open(p, sub.lookup, file.where(typeof entry === 'string' || !Array.isArray(r.path) ? [...at] : [...at, 'path', j])), sub, [...trail, file.path]));
    const imported = mergeFiles(models);
    for (const kind of KINDS) {
      for (const [name, spec] of Object.entries(imported[kind])) {
        const mine = (model[kind] as Record<string, unknown>)[name];
        if (mine !== undefined && JSON.stringify(mine) !== JSON.stringify(spec)) {
          throw new PocError(`${file.where(at)}: ${kind}.${name} conflicts with imported resource (${paths[0]} defines it too)`);
        }
        (model[kind] as Record<string, unknown>)[name] = spec;
      }
    }
  });
}
