/**
 * Loading a project: each file parsed (YAML, with anchors and merge keys), its values interpolated, checked
 * against the Compose Specification's schema and turned into long forms; then the files merged and the
 * references between services, networks and volumes checked. Every error names the file, the line and the
 * key's path (a JSON pointer). Reading files is the caller's (`readFile`), so this is tested without a disk.
 */
import { basename } from 'node:path';
import { LineCounter, parseDocument, isAlias, isMap, isPair, isScalar, isSeq, type Document, type Node } from 'yaml';
import { PocError } from '../errors.js';
import { interpolateTree, parseDotenv, type Lookup } from './interpolate.js';
import { checkComposeSchema } from './schema.js';
import { normalizeFile, normalizeService, type FileModel, type NormalizeContext, type Where } from './normalize.js';
import { extendedService, type FileScope, type SourceFile } from './extends.js';
import { applyIncludes, type IncludeSources } from './include.js';
import { mergeFiles } from './merge.js';
import { projectName } from './files.js';
import { DEFAULT_NETWORK_KEY, serviceScale, type Project } from './model.js';
import { checkScale } from './plan.js';

export interface LoadOptions {
  files: string[];
  workingDir: string;
  /** -p */
  projectName?: string;
  /** The process's environment: it wins over .env. */
  env: Record<string, string | undefined>;
  /** The .env file's text (absent: none). */
  dotenv?: { path: string; text: string };
  readFile: (path: string) => string;
  /** The host's CPUs (deploy.resources.limits.cpus is checked against them). */
  cpuCount?: number;
}

export interface LoadedProject extends Project {
  /** The variables interpolation used (the process's over .env's): env_file and `environment: [K]` read them too. */
  lookup: Lookup;
  /** COMPOSE_PROFILES as .env or the environment gives it. */
  profiles: string[];
}

interface ParsedFile {
  path: string;
  doc: Document;
  lines: LineCounter;
  text: string;
  value: Record<string, unknown>;
}

/** "FILE:LINE: /pointer" for a path of a parsed file (the line of the key where it has one). */
function locator(f: ParsedFile): Where {
  return (path) => {
    const pointer = `/${path.map((s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;
    const line = lineOf(f, path);
    return `${f.path}${line ? `:${line}` : ''}: ${path.length ? pointer : '(top level)'}`;
  };
}

function lineOf(f: ParsedFile, path: Array<string | number>): number | undefined {
  // The pair's key when the path ends at a key of a mapping, so that an unknown key points at itself.
  for (let n = path.length; n >= 0; n--) {
    const parent = n === 0 ? f.doc.contents : f.doc.getIn(path.slice(0, n - 1), true);
    let node: Node | undefined;
    if (n === 0) node = f.doc.contents as Node;
    else if (isMap(parent)) {
      const pair = parent.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(path[n - 1]));
      node = (pair?.key as Node | undefined) ?? undefined;
    } else node = f.doc.getIn(path.slice(0, n), true) as Node | undefined;
    const offset = node?.range?.[0];
    if (offset !== undefined) return f.lines.linePos(offset).line;
  }
  return undefined;
}

/** A scalar's text as the file wrote it (absent: not a scalar of the file, or not there). */
function sourceText(f: ParsedFile): (path: Array<string | number>) => string | undefined {
  // Walked by hand, not doc.getIn, to follow aliases (`mode: *m`) and merge keys (`<<: *defaults`) as toJS did.
  const deref = (n: unknown): unknown => (isAlias(n) ? n.resolve(f.doc) : n);
  const child = (n: unknown, key: string | number): unknown => {
    const node = deref(n);
    if (isSeq(node)) return typeof key === 'number' ? node.items[key] : undefined;
    if (!isMap(node)) return undefined;
    const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(key));
    if (pair) return pair.value;
    // A key a merge key brings: the first source that has it, as YAML's merge keys take it.
    // (the yaml package gives a merge key the value Symbol(<<), and its source "<<")
    const merge = node.items.find((it) => isScalar(it.key) && (it.key.source === '<<' || it.key.value === '<<'));
    const sources = merge ? (isSeq(deref(merge.value)) ? (deref(merge.value) as { items: unknown[] }).items : [merge.value]) : [];
    for (const source of sources) {
      const found = child(source, key);
      if (found !== undefined) return found;
    }
    return undefined;
  };
  return (path) => {
    const node = deref(path.reduce<unknown>((n, k) => (n === undefined ? undefined : child(n, k)), f.doc.contents));
    const range = isScalar(node) ? node.range : undefined;
    return range ? f.text.slice(range[0], range[1]) : undefined;
  };
}

function parseFile(path: string, text: string): ParsedFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, merge: true, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0]?.line;
    throw new PocError(`${path}${line ? `:${line}` : ''}: invalid YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new PocError(`${path}: invalid YAML: ${(e as Error).message}`);
  }
  if (value === null || value === undefined) throw new PocError(`${path}: the file is empty`);
  if (typeof value !== 'object' || Array.isArray(value)) throw new PocError(`${path}: the top level must be a mapping (services:, networks:, volumes:)`);
  return { path, doc, lines, text, value: value as Record<string, unknown> };
}

/** Reads, parses, interpolates and checks one file against the schema. `from`: what named it (absent: -f). */
function openFile(path: string, readFile: (path: string) => string, lookup: Lookup, from?: string): ParsedFile {
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message;
    throw new PocError(from ? `${from}: ${path}: ${why}` : `compose file ${path}: ${why}`);
  }
  const f = parseFile(path, text);
  const where = locator(f);
  f.value = interpolateTree(f.value, lookup, (p) => where(p === '' ? [] : p.split('.'))) as Record<string, unknown>;
  const problem = checkComposeSchema(f.value);
  if (problem) throw new PocError(`${where(problem.path)}: ${problem.message}`);
  return f;
}

export function loadProject(o: LoadOptions): LoadedProject {
  const dotenv = o.dotenv ? parseDotenv(o.dotenv.text, o.dotenv.path, (n) => o.env[n]) : {};
  const lookup: Lookup = (n) => o.env[n] ?? dotenv[n];
  const parsed = o.files.map((path) => openFile(path, o.readFile, lookup));
  const fileName = [...parsed].reverse().find((f) => typeof f.value.name === 'string')?.value.name as string | undefined;
  const env = { ...dotenv, ...o.env };
  const name = projectName({ ...(o.projectName !== undefined ? { flag: o.projectName } : {}), env, ...(fileName !== undefined ? { fileName } : {}), workingDir: o.workingDir });
  const home = env.HOME;
  // Extended and included files are opened once per set of variables (an include's env_file may change them).
  const opened = new Map<string, ParsedFile>();
  const files = new WeakMap<SourceFile, ParsedFile>();
  const asSource = (f: ParsedFile): SourceFile => {
    const s: SourceFile = { path: f.path, value: f.value, where: locator(f) };
    files.set(s, f);
    return s;
  };
  const ctxOf = (file: SourceFile, scope: FileScope): NormalizeContext => ({
    project: name,
    workingDir: scope.workingDir,
    ...(scope.home ? { home: scope.home } : {}),
    where: file.where,
    sourceText: sourceText(files.get(file)!),
    ...(o.cpuCount !== undefined ? { cpuCount: o.cpuCount } : {}),
  });
  const lookups = new Map<Lookup, number>();
  const src: IncludeSources = {
    open: (path, lk, from) => {
      if (!lookups.has(lk)) lookups.set(lk, lookups.size);
      const key = `${lookups.get(lk)}\0${path}`;
      if (!opened.has(key)) opened.set(key, openFile(path, o.readFile, lk, from));
      return asSource(opened.get(key)!);
    },
    normalizeService: (file, scope, service) => normalizeService((((file.value.services ?? {}) as Record<string, unknown>)[service] ?? {}) as Record<string, unknown>, ctxOf(file, scope), ['services', service]),
    readText: (path) => {
      try {
        return o.readFile(path);
      } catch {
        return undefined;
      }
    },
    modelOf: (file, scope, trail) => {
      const model = normalizeFile(file.value, ctxOf(file, scope));
      for (const service of Object.keys(model.services)) model.services[service] = extendedService(src, file, scope, service);
      applyIncludes(src, model, file, scope, trail);
      return model;
    },
  };
  const top: FileScope = { workingDir: o.workingDir, lookup, ...(home ? { home } : {}) };
  const models: FileModel[] = parsed.map((f) => src.modelOf(asSource(f), top, []));
  const merged = mergeFiles(models);
  const first = o.files.map((f) => basename(f)).join(', ');
  const project: LoadedProject = {
    name,
    workingDir: o.workingDir,
    files: o.files,
    ...merged,
    lookup,
    profiles: (env.COMPOSE_PROFILES ?? '').split(',').map((s) => s.trim()).filter(Boolean),
  };
  checkReferences(project, first);
  return project;
}

/** What only the merged project can tell: every service runs something, and what it names exists. */
function checkReferences(p: LoadedProject, files: string): void {
  if (Object.keys(p.services).length === 0) throw new PocError(`${files}: no service is defined (services:)`);
  for (const [name, s] of Object.entries(p.services)) {
    const at = `${files}: /services/${name}`;
    if (!s.image && !s.build) throw new PocError(`${at}: the service has neither an image nor a build`);
    for (const dep of Object.keys(s.dependsOn)) {
      if (!p.services[dep]) throw new PocError(`${at}/depends_on: the service depends on the undefined service ${JSON.stringify(dep)}`);
      if (dep === name) throw new PocError(`${at}/depends_on: the service depends on itself`);
    }
    if (s.networkMode && s.networkMode !== 'bridge' && Object.keys(s.networks).length > 0) {
      throw new PocError(`${at}/network_mode: network_mode and networks cannot be combined`);
    }
    for (const net of Object.keys(s.networks)) {
      if (net !== DEFAULT_NETWORK_KEY && !p.networks[net]) throw new PocError(`${at}/networks/${net}: the service refers to the undefined network ${JSON.stringify(net)}`);
    }
    for (const [i, m] of s.volumes.entries()) {
      if (m.type === 'volume' && m.source && !p.volumes[m.source]) {
        throw new PocError(`${at}/volumes/${i}: the service refers to the undefined volume ${JSON.stringify(m.source)} (declare it under the top-level volumes:)`);
      }
    }
    for (const kind of ['secret', 'config'] as const) {
      for (const [i, g] of s[`${kind}s`].entries()) {
        if (!p[`${kind}s`][g.source]) throw new PocError(`${at}/${kind}s/${i}: the service refers to the undefined ${kind} ${JSON.stringify(g.source)} (declare it under the top-level ${kind}s:)`);
      }
    }
    if (s.ports.length > 0 && (s.networkMode === 'host' || s.networkMode === 'none')) throw new PocError(`${at}/ports: ports need a network (network_mode is ${s.networkMode})`);
    checkScale(name, s, serviceScale(s), (key) => `${at}/${key}`);
  }
  dependencyOrder(p.services, files);
}

/** Services in an order where each comes after what it depends on; a cycle is an error that names it. */
export function dependencyOrder(services: Project['services'], files = 'compose file'): string[] {
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, trail: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new PocError(`${files}: the services depend on each other in a cycle: ${[...trail, name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const dep of Object.keys(services[name]?.dependsOn ?? {})) if (services[dep]) visit(dep, [...trail, name]);
    state.set(name, 'done');
    out.push(name);
  };
  for (const name of Object.keys(services).sort()) visit(name, []);
  return out;
}
