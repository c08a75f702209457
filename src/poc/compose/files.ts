/**
 * Which files make a project and what it is called, as docker compose v2 decides (the file system is read through
 * `FileSystem`, so the rules are tested without one):
 * - the files: every -f in order; else COMPOSE_FILE (split on COMPOSE_PATH_SEPARATOR, ":" by default); else the
 *   first of compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml in the working directory or the
 *   nearest parent that has one, with its override file (compose.override.yaml, ...) after it;
 * - the project directory: --project-directory, else the first file's directory; `.env` there (or --env-file)
 *   gives variables to interpolation, below the process's environment;
 * - the name: -p, else COMPOSE_PROJECT_NAME, else the top-level `name:`, else the project directory's base name
 *   made lower-case with what a name cannot hold removed.
 */
import { dirname, basename, isAbsolute, join, resolve } from 'node:path';
import { PocError } from '../errors.js';

export const COMPOSE_FILE_NAMES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];
const OVERRIDE_NAMES: Record<string, string[]> = {
  'compose.yaml': ['compose.override.yaml', 'compose.override.yml'],
  'compose.yml': ['compose.override.yml', 'compose.override.yaml'],
  'docker-compose.yaml': ['docker-compose.override.yaml', 'docker-compose.override.yml'],
  'docker-compose.yml': ['docker-compose.override.yml', 'docker-compose.override.yaml'],
};

export interface FileSystem {
  exists: (path: string) => boolean;
}

export interface DiscoverOptions {
  /** -f, in order ("-" is standard input, which poc does not take). */
  files: string[];
  cwd: string;
  env: Record<string, string | undefined>;
  projectDirectory?: string;
}

export interface ProjectFiles {
  files: string[];
  /** Relative paths in the files (build contexts, binds, env_file) are taken from here. */
  workingDir: string;
}

export function discoverFiles(o: DiscoverOptions, fs: FileSystem): ProjectFiles {
  let files: string[];
  if (o.files.length > 0) {
    if (o.files.includes('-')) throw new PocError('compose -f -: a compose file on standard input is not supported; give a path');
    files = o.files.map((f) => resolve(o.cwd, f));
  } else if (o.env.COMPOSE_FILE) {
    files = o.env.COMPOSE_FILE.split(o.env.COMPOSE_PATH_SEPARATOR || ':').filter(Boolean).map((f) => resolve(o.cwd, f));
  } else {
    files = findDefault(o.cwd, fs);
  }
  for (const f of files) if (!fs.exists(f)) throw new PocError(`compose file ${f}: No such file or directory`);
  return { files, workingDir: o.projectDirectory ? resolve(o.cwd, o.projectDirectory) : dirname(files[0]!) };
}

function findDefault(cwd: string, fs: FileSystem): string[] {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const name = COMPOSE_FILE_NAMES.find((n) => fs.exists(join(dir, n)));
    if (name) {
      const override = OVERRIDE_NAMES[name]!.find((n) => fs.exists(join(dir, n)));
      return [join(dir, name), ...(override ? [join(dir, override)] : [])];
    }
    if (dir === dirname(dir)) break;
  }
  throw new PocError(`no configuration file provided: none of ${COMPOSE_FILE_NAMES.join(', ')} in ${cwd} or a parent directory (give one with -f)`);
}

const PROJECT_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** A name given by the user (-p, COMPOSE_PROJECT_NAME, `name:`) must already be valid, as compose insists. */
export function checkProjectName(name: string, from: string): string {
  if (!PROJECT_NAME.test(name)) {
    throw new PocError(`invalid project name ${JSON.stringify(name)} (${from}): lower-case letters, digits, dashes and underscores, starting with a letter or digit`);
  }
  return name;
}

/** A directory's name as a project name: lower-case, only [a-z0-9_-], no leading dash or underscore. */
export function normalizeProjectName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9_-]/g, '').replace(/^[_-]+/, '');
}

export function projectName(o: { flag?: string; env: Record<string, string | undefined>; fileName?: string; workingDir: string }): string {
  if (o.flag !== undefined) return checkProjectName(o.flag, '-p');
  if (o.env.COMPOSE_PROJECT_NAME) return checkProjectName(o.env.COMPOSE_PROJECT_NAME, 'COMPOSE_PROJECT_NAME');
  if (o.fileName !== undefined) return checkProjectName(o.fileName, 'the top-level name');
  const name = normalizeProjectName(basename(o.workingDir));
  if (name === '') throw new PocError(`the directory ${o.workingDir} gives no project name: give one with -p`);
  return name;
}

/** A path in a compose file: absolute, `~/...` (the user's home), or relative to the project directory. */
export function resolvePath(path: string, workingDir: string, home: string | undefined): string {
  if (path === '~' || path.startsWith('~/')) {
    if (!home) throw new PocError(`${path}: HOME is not set`);
    return join(home, path.slice(1));
  }
  return isAbsolute(path) ? resolve(path) : resolve(workingDir, path);
}
