/**
 * `poc build`: runs a parsed Dockerfile stage by stage. Each step either changes only the config (ENV, CMD, ...)
 * or is a filesystem step (RUN, COPY, ADD, a WORKDIR that must be made) whose changes become a layer
 * (step-fs.ts); each is looked up in the build cache first (cache.ts). The target stage ends as an image in the
 * store: its layers (the base's, then its own), its history, and a flattened rootfs/ for containers. An
 * unchanged rebuild finds every step cached and its config identical, and so the very image built before.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join, posix, relative, resolve } from 'node:path';
import { PocError, wrapError } from '../errors.js';
import { resolveUser } from '../containers/bundle.js';
import { findImage } from '../containers/provision.js';
import { applyLayer } from '../images/layer.js';
import { commitLayeredImage, flatHistory, imageLayers, layerDir, layerScratch, layeredImageDigest, type LayerRef } from '../images/layers.js';
import { openDecompressed } from '../images/import.js';
import {
  imageRootfs,
  listImages,
  ociArchitecture,
  tagImage,
  type HistoryEntry,
  type ImageConfig,
  type ImageRecord,
} from '../images/image-store.js';
import { checkName, type RootOptions } from '../poc-root.js';
import { idFilesIn, resolveInRoot } from '../root-path.js';
import { formatPlatform, hostPlatform, normalizePlatform, type Platform } from '../registry/manifest.js';
import { cacheGet, cachePut, stepKey } from './cache.js';
import { useCacheMount } from './cache-mounts.js';
import { copyTar, digestStream, isArchive, loadContext, resolveSources, type CopyItem, type SourceRoot } from './context.js';
import { buildError, copyHeredocs, onBuildTrigger, parseDockerfile, soleHeredoc, type Instruction, type RunMount, type Stage } from './dockerfile.js';
import { envLookup, expandText, expandWord, setEnv } from './expand.js';
import { buildPlatform, platformArgs } from './platform.js';
import { forwardAgent, keyAgent } from './ssh-forward.js';
import { fsStep, readOnlyView, runCommand, type Lowers, type RunCommand } from './step-fs.js';
import { goDurationNs } from '../../common/duration.js';

export interface BuildOptions extends RootOptions {
  context: string;
  /** The Dockerfile; default CONTEXT/Dockerfile. */
  file?: string;
  /** -t NAME[:TAG], each. */
  tags: string[];
  buildArgs: Record<string, string>;
  /** --secret: what RUN --mount=type=secret reads, by id. */
  secrets?: Record<string, Buffer>;
  /** --ssh: the ssh agents RUN --mount=type=ssh reaches, by id. */
  ssh?: Record<string, SshSource>;
  target?: string;
  noCache?: boolean;
  network?: 'none' | 'host' | 'bridge';
  /** --platform, checked to be this machine's (platform.ts); default this machine's. */
  platform?: Platform;
  /** Progress lines (steps, cache hits); the commands' own output goes to stdout as it comes. */
  log: (line: string) => void;
}

/** An --ssh id's agent: a socket of the user's, or key files an agent of the build's own holds (ssh-forward.ts). */
export type SshSource = { socket: string } | { keys: string[] };

export interface BuildResult {
  image: ImageRecord;
  /** How many steps came from the cache, and how many ran. */
  cached: number;
  ran: number;
}

/** The files a RUN --mount shows from the context, a stage or an image (a bind's, a cache's from=), and their digest. */
interface MountFiles {
  root: SourceRoot;
  items: CopyItem[];
  digest: string;
}

/** An image as a build goes: its base and the layers made on it so far. */
interface Snapshot {
  base: ImageRecord | null;
  layers: LayerRef[];
  config: ImageConfig;
  history: HistoryEntry[];
  /** The cache key of the last step (the base's identity at first). */
  key: string;
}

interface StageState extends Snapshot {
  stage: Stage;
  /** The base image's ONBUILD triggers, run before the stage's own instructions. */
  triggers: Instruction[];
  /** ARGs declared in this stage, with their values. */
  args: Map<string, string>;
  /** CMD set in this stage (ENTRYPOINT then keeps it). */
  cmdSet: boolean;
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];

function emptyConfig(): ImageConfig {
  return { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: null, Entrypoint: null, WorkingDir: '/', User: '' };
}

/** The lower directories of a snapshot's overlay, topmost first. */
function lowersOf(s: Snapshot, opts: RootOptions): Lowers {
  const out = s.layers.map((l) => layerDir(l.diffID, opts)).reverse();
  if (s.base) out.push(imageRootfs(s.base, opts));
  return out;
}

/** Which stages the target needs (FROM a stage, COPY --from a stage), in order. */
function neededStages(stages: Stage[], target: number, byName: (ref: string) => number | undefined): Set<number> {
  const need = new Set<number>();
  const visit = (i: number) => {
    if (need.has(i)) return;
    need.add(i);
    const s = stages[i]!;
    const from = byName(s.from.words[0]!.toLowerCase());
    if (from !== undefined && from < i) visit(from);
    for (const ins of s.instructions) {
      // COPY --from, and RUN --mount's from= (a bind's, a cache's).
      for (const f of [ins.flags.from, ...ins.mounts.map((m) => ('from' in m ? m.from : undefined))]) {
        const j = f === undefined ? undefined : byName(f.toLowerCase());
        if (j !== undefined && j < i) visit(j);
      }
    }
  };
  visit(target);
  return need;
}

/** The RUN/CMD/ENTRYPOINT command: the exec form as written, the shell form through the SHELL. */
function commandOf(ins: Instruction, shell: string[]): string[] {
  return ins.json ?? [...shell, ins.text];
}

/** A Go duration, as docker reads HEALTHCHECK's flags: 30s, 1m30s, 1.5h, 500ms (ns). */
export function parseDuration(value: string, where: string, flag: string): number {
  const ns = goDurationNs(value);
  if (ns === undefined) throw buildError(where, `HEALTHCHECK --${flag}: invalid duration ${JSON.stringify(value)} (as 30s, 1m30s, 500ms)`);
  return ns;
}

/**
 * The paths inside the image (absolute there) from the first missing component of `target` down, the deepest last:
 * `target` resolved within the image first (root-path.ts), as the runtime makes the mount point, so that no link
 * of the image's sends the check to the host's files.
 */
function missingPaths(merged: string, target: string): string[] {
  const parts = relative(merged, resolveInRoot(merged, target)).split('/').filter((p) => p !== '');
  const out: string[] = [];
  let path = '';
  for (const part of parts) {
    path = `${path}/${part}`;
    if (out.length === 0 && existsSync(join(merged, path))) continue; // links resolved: nothing is followed here
    out.push(path);
  }
  return out;
}

/**
 * Removes the mount points a RUN's mounts made, deepest first, if they are still empty (the command left them).
 * The command may have turned a directory on the way into a link (out to the host's files, seen from here): a
 * path that no longer resolves to itself inside the image is left alone.
 */
function removeStubs(merged: string, stubs: string[]): void {
  for (const stub of [...stubs].reverse()) {
    const p = join(merged, stub);
    try {
      if (resolveInRoot(merged, stub) !== p) continue;
      const st = lstatSync(p);
      if (st.isDirectory()) rmdirSync(p);
      else if (st.isFile() && st.size === 0) unlinkSync(p);
    } catch {
      // not there, or not empty: the command's own
    }
  }
}

/** A RUN --mount of a required secret or ssh agent that the build was not given: its error. */
function missingRequired(m: RunMount, o: Pick<BuildOptions, 'secrets' | 'ssh'>, where: string): void {
  if (m.type === 'secret' && m.required && o.secrets?.[m.id] === undefined) {
    throw buildError(where, `RUN --mount=${m.spec}: no secret ${JSON.stringify(m.id)} was given (poc build --secret id=${m.id},src=FILE)`);
  }
  if (m.type === 'ssh' && m.required && o.ssh?.[m.id] === undefined) {
    throw buildError(where, `RUN --mount=${m.spec}: no ssh agent ${JSON.stringify(m.id)} was given (poc build --ssh ${m.id === 'default' ? 'default' : `${m.id}=SOCKET|KEYFILE`})`);
  }
}

/**
 * A config-only instruction applied to a config (pure): ENV, LABEL, USER, CMD, ENTRYPOINT, EXPOSE, VOLUME,
 * SHELL, STOPSIGNAL, HEALTHCHECK, MAINTAINER. Used by the build and by `poc commit -c`. `cmdSet`: a CMD was
 * given in this stage (an ENTRYPOINT resets only an inherited one). Returns the new config and the history text.
 */
export function applyConfigInstruction(config: ImageConfig, ins: Instruction, lookup: (name: string) => string | undefined, cmdSet: boolean): { config: ImageConfig; shown: string } {
  const c = structuredClone(config);
  const x = (w: string) => expandWord(w, lookup, ins.where);
  let shown = ins.source;
  switch (ins.keyword) {
    case 'ENV':
      for (const [k, v] of ins.pairs) {
        c.Env = setEnv(c.Env, k, x(v!));
      }
      shown = `ENV ${ins.pairs.map(([k]) => `${k}=${envLookup(c.Env)(k)}`).join(' ')}`;
      break;
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const [k, v] of ins.pairs) c.Labels[x(k)] = x(v!);
      break;
    case 'MAINTAINER':
      c.Labels = { ...(c.Labels ?? {}), maintainer: ins.text };
      break;
    case 'ONBUILD':
      // Kept as written: the build FROM this image expands it in its own scope.
      c.OnBuild = [...(c.OnBuild ?? []), ins.text.trim()];
      shown = `ONBUILD ${ins.text.trim()}`;
      break;
    case 'USER':
      c.User = x(ins.words[0]!);
      shown = `USER ${c.User}`;
      break;
    case 'CMD':
      c.Cmd = commandOf(ins, c.Shell ?? DEFAULT_SHELL);
      shown = `CMD ${JSON.stringify(c.Cmd)}`;
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = ins.text.trim() === '' ? null : commandOf(ins, c.Shell ?? DEFAULT_SHELL);
      // As docker: an ENTRYPOINT resets a CMD that came from the base image.
      if (!cmdSet) c.Cmd = null;
      shown = `ENTRYPOINT ${JSON.stringify(c.Entrypoint)}`;
      break;
    case 'EXPOSE':
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const w of ins.words) {
        const p = x(w);
        if (!/^\d{1,5}(-\d{1,5})?(\/(tcp|udp|sctp))?$/i.test(p)) throw buildError(ins.where, `EXPOSE: invalid port ${JSON.stringify(p)} (PORT[/tcp|/udp])`);
        c.ExposedPorts[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
      }
      break;
    case 'VOLUME':
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of ins.json ?? ins.words) {
        const p = x(v);
        if (p === '') throw buildError(ins.where, 'VOLUME: an empty path');
        c.Volumes[p] = {};
      }
      break;
    case 'SHELL':
      c.Shell = ins.json!;
      break;
    case 'STOPSIGNAL': {
      const sig = x(ins.words[0]!);
      if (!/^(SIG[A-Z0-9+-]+|[A-Z0-9+-]+|\d+)$/.test(sig)) throw buildError(ins.where, `STOPSIGNAL: invalid signal ${JSON.stringify(sig)}`);
      c.StopSignal = sig;
      break;
    }
    case 'HEALTHCHECK': {
      if (ins.words[0]!.toUpperCase() === 'NONE') {
        c.Healthcheck = { Test: ['NONE'] };
        break;
      }
      const rest = ins.text.trim().replace(/^CMD\s+/i, '');
      const json = rest.startsWith('[') ? (() => {
        try {
          const v = JSON.parse(rest) as unknown;
          return Array.isArray(v) && v.every((e) => typeof e === 'string') ? (v as string[]) : null;
        } catch {
          return null;
        }
      })() : null;
      const hc: NonNullable<ImageConfig['Healthcheck']> = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', rest] };
      const f = ins.flags;
      if (f.interval) hc.Interval = parseDuration(f.interval, ins.where, 'interval');
      if (f.timeout) hc.Timeout = parseDuration(f.timeout, ins.where, 'timeout');
      if (f['start-period']) hc.StartPeriod = parseDuration(f['start-period'], ins.where, 'start-period');
      if (f.retries) {
        if (!/^\d+$/.test(f.retries)) throw buildError(ins.where, `HEALTHCHECK --retries: ${JSON.stringify(f.retries)} is not a whole number`);
        hc.Retries = Number(f.retries);
      }
      c.Healthcheck = hc;
      break;
    }
    default:
      throw buildError(ins.where, `${ins.keyword} is not a config instruction`);
  }
  return { config: c, shown };
}


export async function build(o: BuildOptions): Promise<BuildResult> {
  for (const t of o.tags) checkName('image', t);
  const contextDir = resolve(o.context);
  const context = loadContext(contextDir);
  const file = o.file ? resolve(o.file) : join(contextDir, 'Dockerfile');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw wrapError(`read the Dockerfile ${file}`, err);
  }
  const shown = o.file ?? 'Dockerfile';
  const parsed = parseDockerfile(text, shown);
  const stages = parsed.stages;
  const byName = (ref: string) => {
    const i = stages.findIndex((s) => s.name === ref);
    if (i >= 0) return i;
    if (/^\d+$/.test(ref) && Number(ref) < stages.length) return Number(ref);
    return undefined;
  };
  let target = stages.length - 1;
  if (o.target !== undefined) {
    const t = stages.findIndex((s) => s.name === o.target!.toLowerCase());
    if (t < 0) throw new PocError(`--target ${o.target}: no stage of that name in ${shown} (stages: ${stages.map((s) => s.name ?? s.index).join(', ')})`);
    target = t;
  }
  const need = neededStages(stages, target, byName);

  // ARGs before FROM: BuildKit's automatic platform ones, then the Dockerfile's defaults, overridden by --build-arg.
  const host = hostPlatform();
  const platform = o.platform ?? host;
  const globalArgs = new Map<string, string>(platformArgs(host, platform));
  for (const ins of parsed.globalArgs) {
    for (const [name, def] of ins.pairs) {
      const v = o.buildArgs[name] ?? (def === null ? undefined : expandWord(def, (n) => globalArgs.get(n), ins.where));
      if (v !== undefined) globalArgs.set(name, v);
    }
  }
  // FROM --platform of every stage built, before anything is pulled or made: only this machine's can run.
  for (const i of need) {
    const from = stages[i]!.from;
    const flag = from.flags.platform;
    if (flag !== undefined) buildPlatform(expandWord(flag, (n) => globalArgs.get(n), from.where), `${from.where}: FROM --platform=${flag}`);
  }
  // A required secret or ssh agent that was not given, before any step runs (a base's ONBUILD triggers are checked
  // as they run, in their step).
  for (const i of need) {
    for (const ins of stages[i]!.instructions) {
      for (const m of ins.mounts) missingRequired(m, o, ins.where);
    }
  }
  const usedArgs = new Set<string>([...globalArgs.keys()]);
  const done = new Map<number, StageState>();
  const baseLayers = new Map<string, Promise<LayerRef[]>>();
  const total = [...need].reduce((n, i) => n + 1 + stages[i]!.instructions.length, 0);
  let stepNo = 0;
  let cached = 0;
  let ran = 0;

  const startStage = async (stage: Stage): Promise<StageState> => {
    const ins = stage.from;
    const ref = expandWord(ins.words[0]!, (n) => globalArgs.get(n), ins.where);
    o.log(`STEP ${++stepNo}/${total}: ${ins.source}`);
    const fromStage = byName(ref.toLowerCase());
    let snap: Snapshot;
    let onBuild: string[] = [];
    if (fromStage !== undefined && fromStage < stage.index && done.has(fromStage)) {
      const s = done.get(fromStage)!;
      snap = { base: s.base, layers: [...s.layers], config: structuredClone(s.config), history: [...s.history], key: s.key };
    } else if (ref === 'scratch') {
      snap = { base: null, layers: [], config: emptyConfig(), history: [], key: 'scratch' };
    } else {
      let image: ImageRecord;
      try {
        image = await findImage(ref, o);
      } catch (err) {
        throw wrapError(`${ins.where}: FROM ${ref}`, err);
      }
      if (normalizePlatform({ os: image.os, architecture: image.architecture }).architecture !== normalizePlatform(platform).architecture) {
        throw buildError(ins.where, `FROM ${ref}: the image is for ${image.os}/${image.architecture}, and this build for ${formatPlatform(platform)}`);
      }
      // An image made in one piece becomes one layer the first time it is a base: a digest of all its files,
      // which runs while the steps do (it is awaited when the image is committed).
      if (!image.layers && !baseLayers.has(image.id)) {
        const p = imageLayers(image, o);
        p.catch(() => undefined);
        baseLayers.set(image.id, p);
      }
      snap = {
        base: image,
        layers: [],
        config: structuredClone(image.config),
        history: flatHistory(image),
        key: `image:${image.digest ?? image.id}`,
      };
      // An image's ONBUILD triggers run here, first in this stage, and are not passed on (docker's rule).
      onBuild = snap.config.OnBuild ?? [];
      delete snap.config.OnBuild;
    }
    const triggers = onBuild.map((text, i) => onBuildTrigger(text, `${ins.where}: ONBUILD trigger ${i + 1} of image ${ref}`));
    return { ...snap, stage, args: new Map(), cmdSet: false, triggers };
  };

  const stageRoots = new Map<number, { path: string; close: () => Promise<void> }>();
  /** What COPY --from or RUN --mount=type=bind,from= reads: the context, an earlier stage or an image. */
  const sourceRootFor = async (ins: Instruction, s: StageState, from = ins.flags.from): Promise<SourceRoot> => {
    if (from === undefined) return context;
    const ref = expandWord(from, lookupFor(s), ins.where);
    const j = byName(ref.toLowerCase());
    if (j !== undefined) {
      if (j >= s.stage.index) throw buildError(ins.where, `${ins.keyword} --from=${ref}: a stage can only copy from an earlier stage`);
      if (!stageRoots.has(j)) stageRoots.set(j, await readOnlyView(lowersOf(done.get(j)!, o), o));
      return { dir: stageRoots.get(j)!.path, what: `stage ${ref}` };
    }
    let image: ImageRecord;
    try {
      image = await findImage(ref, o);
    } catch (err) {
      throw wrapError(`${ins.where}: ${ins.keyword} --from=${ref}`, err);
    }
    return { dir: imageRootfs(image, o), what: `image ${ref}` };
  };

  const lookupFor = (s: StageState) => envLookup(s.args, s.config.Env);

  /** The environment a RUN sees: the image's, then the build args not set by ENV. */
  const runEnv = (s: StageState): string[] => {
    let env = [...s.config.Env];
    for (const [k, v] of s.args) if (!env.some((e) => e.startsWith(`${k}=`))) env = [...env, `${k}=${v}`];
    return env;
  };

  const step = async (s: StageState, ins: Instruction, keyInput: unknown, fn: (() => Promise<LayerRef | null>) | null, createdBy: string) => {
    const key = stepKey(s.key, { ins: createdBy, keyInput });
    const hit = o.noCache ? null : cacheGet(key, o);
    let entry;
    if (hit) {
      o.log(' --> Using cache');
      cached++;
      entry = hit;
    } else {
      const layer = fn ? await fn() : null;
      entry = { layer, created: new Date().toISOString() };
      cachePut(key, entry, o);
      if (fn) ran++;
    }
    s.key = key;
    if (entry.layer) s.layers.push(entry.layer);
    s.history.push({ created: entry.created, created_by: createdBy, ...(entry.layer ? {} : { empty_layer: true }) });
  };

  const userOf = (s: StageState, merged: string) => {
    const ids = idFilesIn(merged);
    return resolveUser(s.config.User, ids.passwd, ids.group);
  };

  const chownOf = (ins: Instruction, s: StageState, merged: string): { uid: number; gid: number } | undefined => {
    const spec = ins.flags.chown;
    if (spec === undefined) return undefined;
    const v = expandWord(spec, lookupFor(s), ins.where);
    try {
      const ids = idFilesIn(merged);
      const u = resolveUser(v, ids.passwd, ids.group);
      // --chown=USER alone: the user's primary group, as docker (resolveUser gives it).
      return { uid: u.uid, gid: u.gid };
    } catch (err) {
      throw wrapError(`${ins.where}: ${ins.keyword} --chown=${v}`, err);
    }
  };

  const copyStep = async (s: StageState, ins: Instruction) => {
    const docs = ins.json ? null : copyHeredocs(ins.text, ins.where);
    if (!docs) return copyFrom(s, ins, (ins.json ?? ins.words).map((w) => expandWord(w, lookupFor(s), ins.where)), await sourceRootFor(ins, s));
    // Here-documents: each a file named after it (variables expanded unless its name was quoted), copied as a
    // context file would be (the file's bytes in the step's key).
    const dir = layerScratch(o);
    try {
      for (const [name, d] of docs.docs) writeFileSync(join(dir, name), d.expand ? expandText(d.content, lookupFor(s), ins.where) : d.content, { mode: 0o644 });
      const words = [...docs.words.slice(0, -1), expandWord(docs.words.at(-1)!, lookupFor(s), ins.where)];
      await copyFrom(s, ins, words, { dir, what: 'the here-documents' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  /** COPY and ADD of `words` (sources, then the destination; variables expanded) from `root`. */
  const copyFrom = async (s: StageState, ins: Instruction, words: string[], root: SourceRoot) => {
    const dest0 = words.pop()!;
    for (const w of words) if (/^[a-z][a-z0-9+.-]*:\/\//i.test(w)) throw buildError(ins.where, `${ins.keyword} from a URL (${w}) is not supported: poc build fetches nothing; download it into the context`);
    const sources = words.flatMap((w) => resolveSources(root, w, ins.where));
    const dest = posix.resolve(s.config.WorkingDir || '/', dest0);
    const many = sources.length > 1 || words.some((w) => /[*?[]/.test(w));
    const destIsDir = dest0.endsWith('/') || dest0.endsWith('/.') || dest0 === '.';
    if (many && !destIsDir) throw buildError(ins.where, `${ins.keyword} with more than one source: the destination ${dest0} must be a directory ending in /`);
    let mode: number | undefined;
    if (ins.flags.chmod !== undefined) {
      if (!/^[0-7]{3,4}$/.test(ins.flags.chmod)) throw buildError(ins.where, `${ins.keyword} --chmod=${ins.flags.chmod}: an octal mode, as 0755`);
      mode = parseInt(ins.flags.chmod, 8);
    }
    // ADD unpacks local tar archives; the cache sees their bytes like any file.
    const unpack = ins.keyword === 'ADD' ? await Promise.all(sources.map((src) => (src.isDir ? false : isArchive(src.path)))) : sources.map(() => false);
    const plain = sources.filter((_, i) => !unpack[i]);
    const archives = sources.filter((_, i) => unpack[i]);
    const itemsFor = (existingDir: boolean): CopyItem[] =>
      plain.map((src) => ({ source: src, name: src.isDir ? '' : destIsDir || many || existingDir ? basename(src.path) : basename(dest) }));
    const inputs = await digestStream(copyTar(itemsFor(false), { root, mtime: 0, ...(mode !== undefined ? { mode } : {}) }));
    const archiveInputs = await Promise.all(archives.map((a) => digestStream(openDecompressed(a.path))));
    const createdBy = `${ins.keyword} ${ins.flags.chown ? `--chown=${ins.flags.chown} ` : ''}${ins.flags.chmod ? `--chmod=${ins.flags.chmod} ` : ''}${ins.flags.from ? `--from=${ins.flags.from} ` : ''}${words.join(' ')} ${dest}`;
    await step(s, ins, { inputs, archiveInputs, destIsDir }, () =>
      fsStep(lowersOf(s, o), async (merged) => {
        const owner = chownOf(ins, s, merged);
        const resolvedDest = resolveInRoot(merged, dest);
        const existingDir = existsSync(resolvedDest) && lstatSync(resolvedDest).isDirectory();
        const anyDir = plain.some((p) => p.isDir);
        const into = destIsDir || many || existingDir || anyDir || archives.length > 0 ? resolvedDest : resolveInRoot(merged, posix.dirname(dest));
        mkdirSync(into, { recursive: true });
        if (plain.length) await applyLayer(into, copyTar(itemsFor(existingDir), { root, ...(owner ? { owner } : {}), ...(mode !== undefined ? { mode } : {}) }), { chown: true });
        for (const a of archives) await applyLayer(into, openDecompressed(a.path), { chown: true });
      }, o),
    createdBy);
  };

  const runStep = async (s: StageState, ins: Instruction) => {
    const shell = s.config.Shell ?? DEFAULT_SHELL;
    // A command that is one heredoc: its text through the shell, or, with a #! line, run as a script (mounted at
    // /dev/pipes/NAME, where buildkit puts it). Any other heredoc is the shell's to read (commandOf).
    const doc = ins.json ? null : soleHeredoc(ins.text);
    const script = doc?.content.startsWith('#!') ? doc : null;
    const args = script ? [`/dev/pipes/${script.name}`] : doc ? [...shell, doc.content] : commandOf(ins, shell);
    const env = runEnv(s);
    // As buildkit: the first ssh mount is the agent ssh and ssh-add find, unless the image says otherwise.
    const ssh = ins.mounts.find((m) => m.type === 'ssh');
    if (ssh && !env.some((e) => e.startsWith('SSH_AUTH_SOCK='))) env.push(`SSH_AUTH_SOCK=${ssh.target}`);
    // The files a bind mount shows, or a cache mount's from= seeds it with, are part of the step's key, as a COPY's
    // (a cache's own files and a secret are not).
    const binds = new Map<RunMount, MountFiles>();
    for (const m of ins.mounts) {
      if (m.type !== 'bind' && !(m.type === 'cache' && m.from !== undefined)) continue;
      const root = await sourceRootFor(ins, s, m.from === undefined ? undefined : m.from);
      const sources = resolveSources(root, expandWord(m.source ?? '.', lookupFor(s), ins.where), ins.where);
      const items = sources.map((src) => ({ source: src, name: src.isDir ? '' : basename(src.path) }));
      binds.set(m, { root, items, digest: await digestStream(copyTar(items, { root, mtime: 0 })) });
    }
    const bindInputs = [...binds.values()].map((b) => b.digest);
    const flag = ins.flags.network;
    if (flag !== undefined && flag !== 'none' && flag !== 'host' && flag !== 'default') throw buildError(ins.where, `RUN --network=${flag}: use none, host or default (the build's --network)`);
    const net = flag === undefined || flag === 'default' ? (o.network ?? 'none') : flag;
    const buildArgsShown = [...s.args].map(([k, v]) => `${k}=${v}`);
    const mountsShown = ins.mounts.map((m) => `--mount=${m.spec} `).join('');
    const createdBy = `${buildArgsShown.length ? `|${buildArgsShown.length} ${buildArgsShown.join(' ')} ` : ''}RUN ${mountsShown}${ins.json ? JSON.stringify(ins.json) : args.join(' ')}`;
    await step(
      s,
      ins,
      { env, user: s.config.User, cwd: s.config.WorkingDir, net, ...(ins.mounts.length ? { mounts: ins.mounts.map((m) => m.spec), bindInputs } : {}) },
      () =>
        fsStep(lowersOf(s, o), async (merged, scratch) => {
          const cwd = s.config.WorkingDir || '/';
          const { mounts, release } = await runMounts(ins, scratch, binds, script);
          // The mount points the runtime makes in the image for them are not the step's to keep, as buildkit.
          const stubs = ins.mounts.flatMap((m) => missingPaths(merged, m.target));
          try {
            await runCommand(merged, scratch, { args, env, cwd, user: userOf(s, merged), network: net as 'none' | 'host' | 'bridge', where: ins.where, source: ins.source, mounts }, o);
          } finally {
            await release();
            removeStubs(merged, stubs);
          }
        }, o),
      createdBy,
    );
  };

  /**
   * The OCI mounts of a RUN's --mount flags and heredoc script, made in the step's scratch directory (which goes
   * with the step), and the release of what they hold (cache mounts in use) once the command is done.
   */
  const runMounts = async (
    ins: Instruction,
    scratch: string,
    binds: Map<RunMount, MountFiles>,
    script: { name: string; content: string } | null,
  ): Promise<{ mounts: NonNullable<RunCommand['mounts']>; release: () => Promise<void> }> => {
    const out: NonNullable<RunCommand['mounts']> = [];
    const held: Array<() => void | Promise<void>> = [];
    // An id mounted twice in one step is one cache, as buildkit (its exec op reuses the ref): never a wait on itself.
    const caches = new Map<string, string>();
    const release = async () => {
      for (const r of held.splice(0)) await r();
    };
    try {
      for (const [i, m] of ins.mounts.entries()) {
        const where = join(scratch, `mount-${i}`);
        if (m.type === 'bind') {
          // A copy of what it names (the context's .dockerignore applies): with rw, the command's writes go to the
          // copy, which goes with the step (buildkit discards them too).
          const b = binds.get(m)!;
          mkdirSync(where);
          await applyLayer(where, copyTar(b.items, { root: b.root }), { chown: true });
          const single = b.items.length === 1 && !b.items[0]!.source.isDir;
          out.push({ destination: m.target, type: 'bind', source: single ? join(where, b.items[0]!.name) : where, options: ['rbind', m.readwrite ? 'rw' : 'ro'] });
        } else if (m.type === 'cache') {
          // With from=, a cache of its own per seed, as buildkit keys it by its base too; each new instance a copy.
          const files = binds.get(m);
          const id = files ? `${m.id}\n${files.digest}` : m.id;
          const seed = files && (async (dir: string) => void (await applyLayer(dir, copyTar(files.items, { root: files.root }), { chown: true })));
          let dir = caches.get(id);
          if (dir === undefined) {
            const use = await useCacheMount(id, m.sharing, m, o, () => o.log(` --> waiting for the cache mount ${m.id} (sharing=locked): another build is using it`), seed);
            held.push(use.release);
            caches.set(id, (dir = use.dir));
          }
          out.push({ destination: m.target, type: 'bind', source: dir, options: ['rbind', m.readonly ? 'ro' : 'rw'] });
        } else if (m.type === 'tmpfs') {
          out.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', ...(m.size !== undefined ? [`size=${m.size}`] : [])] });
        } else if (m.type === 'secret') {
          const data = o.secrets?.[m.id];
          missingRequired(m, o, ins.where);
          if (data === undefined) continue;
          writeFileSync(where, data, { mode: 0o600 });
          chownSync(where, m.uid, m.gid);
          chmodSync(where, m.mode);
          out.push({ destination: m.target, type: 'bind', source: where, options: ['bind', 'ro'] });
        } else {
          const agent = agents.get(m.id);
          missingRequired(m, o, ins.where);
          if (agent === undefined) continue;
          const socket = join(scratch, `ssh-${i}.sock`);
          held.push(await forwardAgent(agent, socket, m));
          out.push({ destination: m.target, type: 'bind', source: socket, options: ['bind'] });
        }
      }
    } catch (err) {
      await release();
      throw err;
    }
    if (script) {
      const file = join(scratch, `heredoc-${script.name}`);
      writeFileSync(file, script.content, { mode: 0o755 });
      out.push({ destination: `/dev/pipes/${script.name}`, type: 'bind', source: file, options: ['bind', 'ro'] });
    }
    return { mounts: out, release };
  };

  const workdirStep = async (s: StageState, ins: Instruction) => {
    const dir = posix.resolve(s.config.WorkingDir || '/', expandWord(ins.words[0]!, lookupFor(s), ins.where));
    s.config.WorkingDir = dir;
    // The directory is made (as root) if the image lacks it, in a layer of its own; else the step is config only.
    await step(s, ins, null, () => fsStep(lowersOf(s, o), async (merged) => {
      mkdirSync(resolveInRoot(merged, dir), { recursive: true, mode: 0o755 });
    }, o), `WORKDIR ${dir}`);
  };

  const configStep = async (s: StageState, ins: Instruction) => {
    if (ins.keyword === 'ARG') {
      for (const [name, def] of ins.pairs) {
        usedArgs.add(name);
        const v = o.buildArgs[name] ?? (def === null ? globalArgs.get(name) : expandWord(def, lookupFor(s), ins.where));
        if (v !== undefined) s.args.set(name, v);
      }
      await step(s, ins, { config: s.config, args: [...s.args] }, null, ins.source);
      return;
    }
    const r = applyConfigInstruction(s.config, ins, lookupFor(s), s.cmdSet);
    s.config = r.config;
    if (ins.keyword === 'CMD') s.cmdSet = true;
    await step(s, ins, { config: s.config, args: [...s.args] }, null, r.shown);
  };

  let result: StageState | undefined;
  // --ssh: each id's agent socket; key files go into an ssh-agent of this build's own, started before any step.
  const agents = new Map<string, string>();
  const agentStops: Array<() => Promise<void>> = [];
  let agentDir: string | undefined;
  try {
    for (const [id, src] of Object.entries(o.ssh ?? {})) {
      if ('socket' in src) {
        agents.set(id, src.socket);
        continue;
      }
      agentDir ??= layerScratch(o);
      mkdirSync(join(agentDir, id));
      const a = await keyAgent(src.keys, join(agentDir, id), `build: --ssh ${id}=${src.keys.join(',')}`);
      agentStops.push(a.stop);
      agents.set(id, a.socket);
    }
    for (const stage of stages) {
      if (!need.has(stage.index)) continue;
      const s = await startStage(stage);
      for (const ins of [...s.triggers, ...stage.instructions]) {
        o.log(s.triggers.includes(ins) ? ` --> ${ins.where.replace(/^.*: /, '')}: ${ins.source}` : `STEP ${++stepNo}/${total}: ${ins.source}`);
        switch (ins.keyword) {
          case 'RUN':
            await runStep(s, ins);
            break;
          case 'COPY':
          case 'ADD':
            await copyStep(s, ins);
            break;
          case 'WORKDIR':
            await workdirStep(s, ins);
            break;
          default:
            await configStep(s, ins);
        }
      }
      done.set(stage.index, s);
      if (stage.index === target) result = s;
    }
  } catch (err) {
    // A base's layer being made is finished (or fails) before the error is reported: nothing half-made stays.
    await Promise.allSettled(baseLayers.values());
    throw err;
  } finally {
    for (const r of stageRoots.values()) await r.close();
    for (const stop of agentStops) await stop();
    if (agentDir) rmSync(agentDir, { recursive: true, force: true });
  }
  const unused = Object.keys(o.buildArgs).filter((k) => !usedArgs.has(k));
  if (unused.length) o.log(`[Warning] one or more build args were not consumed: ${unused.join(', ')}`);
  const image = await commitBuild(result!, o, baseLayers);
  return { image, cached, ran };
}

/** The target stage as an image: the one already in the store if identical (an unchanged rebuild), else a new one. */
async function commitBuild(s: StageState, o: BuildOptions, pending: Map<string, Promise<LayerRef[]>>): Promise<ImageRecord> {
  const baseLayers = s.base ? await (pending.get(s.base.id) ?? imageLayers(s.base, o)) : [];
  const layers = [...baseLayers, ...s.layers];
  const history = s.history;
  const created = history.at(-1)?.created ?? new Date().toISOString();
  const architecture = s.base?.architecture ?? ociArchitecture();
  const digest = layeredImageDigest({ created, architecture, config: s.config, layers, history });
  let image = listImages(o).find((i) => i.digest === digest && i.source.kind === 'build');
  if (!image) {
    image = await commitLayeredImage(o, {
      name: o.tags[0] ?? null,
      source: { kind: 'build' },
      config: s.config,
      base: s.base ?? null,
      added: s.layers,
      digest,
      architecture,
      layers,
      history,
      created,
    });
  } else if (o.tags[0] !== undefined) {
    image = await tagImage(image, o.tags[0], o);
  }
  for (const t of o.tags.slice(1)) await tagImage(image, t, o);
  return image;
}
