/**
 * `poc import FILE|DIR [NAME]`: a rootfs tarball (.tar, .tar.gz, .tar.zst, .tar.xz), a `docker save` archive
 * (manifest.json + config + layer tars, as a file or unpacked) or an OCI image layout (oci-layout, index.json,
 * blobs/sha256/...). Layers are applied in order with whiteouts (layer.ts); the image config is kept.
 *
 * A tarball is extracted once into the staging directory; if what came out is a docker or OCI archive, its
 * layers are then applied into a fresh rootfs and the unpacked archive is dropped.
 */
import type { HealthConfig } from '../containers/health.js';
import { spawn } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { PassThrough, Transform, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { UserError, PocError, wrapError } from '../errors.js';
import { checkName, type RootOptions } from '../poc-root.js';
import { applyLayer } from './layer.js';
import {
  commitImage,
  createStaging,
  defaultImageConfig,
  ociArchitecture,
  type ImageConfig,
  type ImageRecord,
  type ImageSourceKind,
  type InUse,
} from './image-store.js';

export interface ImportProgress {
  layer: number;
  layers: number;
}

export interface ImportOptions extends RootOptions {
  /** Replace an image of the same name. */
  replace?: boolean;
  inUse?: InUse;
  onProgress?: (p: ImportProgress) => void;
  /** Told once, at the end, of what was imported only in part (extended attributes the store cannot hold). */
  onWarning?: (message: string) => void;
}

// ---------------------------------------------------------------------------------------------------------
// decompression

export type Compression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

export function detectCompression(magic: Buffer): Compression {
  if (magic[0] === 0x1f && magic[1] === 0x8b) return 'gzip';
  if (magic.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (magic.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (magic.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  return 'none';
}

function readMagic(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(8);
    readSync(fd, b, 0, 8, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

/**
 * The decompressed bytes of a file, in chunks. gzip through zlib; zstd, xz and bzip2 through the host's tools.
 * `hash` sees the raw (compressed) bytes, to check a blob against its digest.
 */
export async function* openDecompressed(path: string, hash?: Hash): AsyncGenerator<Buffer> {
  const kind = detectCompression(readMagic(path));
  const file = createReadStream(path);
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash?.update(chunk);
      cb(null, chunk);
    },
  });
  const noop = () => {};
  if (kind === 'none' || kind === 'gzip') {
    const out = kind === 'gzip' ? createGunzip() : new PassThrough();
    pipeline(file, tap, out, noop);
    try {
      for await (const chunk of out) yield chunk as Buffer;
    } catch (err) {
      if (err instanceof UserError) throw err;
      if (kind === 'gzip') throw new PocError(`${path}: truncated or damaged gzip data (${(err as Error).message})`);
      throw wrapError(`read ${path}`, err);
    } finally {
      file.destroy();
      out.destroy();
    }
    return;
  }
  const tool = kind === 'zstd' ? 'zstd' : kind === 'xz' ? 'xz' : 'bzip2';
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) => reject(wrapError(`${tool} (needed to decompress ${path})`, err)));
    child.on('close', (code) => resolve(code));
  });
  exited.catch(noop);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  pipeline(file, tap, child.stdin, noop);
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const code = await exited;
    if (code !== 0) throw new PocError(`${path}: truncated or damaged ${kind} data (${tool}: ${stderr.trim() || `exit ${code}`})`);
  } finally {
    file.destroy();
    if (child.exitCode === null) child.kill();
  }
}

// ---------------------------------------------------------------------------------------------------------
// archive formats (pure parts)

const DIGEST_RE = /^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$/;

/** blobs/<alg>/<hex>, from a digest checked before it becomes a path. */
export function blobPath(digest: unknown): string {
  const m = typeof digest === 'string' ? DIGEST_RE.exec(digest) : null;
  if (!m || (m[1] === 'sha256') !== (m[2]!.length === 64)) throw new PocError(`invalid digest ${JSON.stringify(digest)}`);
  return `blobs/${m[1]}/${m[2]}`;
}

/** A path inside an archive directory, as written in manifest.json: relative, no "..". */
export function archivePath(p: unknown): string {
  if (typeof p !== 'string' || p === '' || p.startsWith('/') || p.split('/').includes('..')) {
    throw new PocError(`invalid path ${JSON.stringify(p)} in archive manifest`);
  }
  return p;
}

function stringArray(v: unknown): string[] | null {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
}

/** The runnable part of an OCI / docker image config ("config" object), with defaults. */
export function imageConfigFrom(config: unknown): ImageConfig {
  const c = (config && typeof config === 'object' ? config : {}) as Record<string, unknown>;
  const out = defaultImageConfig({
    Env: stringArray(c.Env) ?? [],
    Cmd: stringArray(c.Cmd),
    Entrypoint: stringArray(c.Entrypoint),
    WorkingDir: typeof c.WorkingDir === 'string' && c.WorkingDir !== '' ? c.WorkingDir : '/',
    User: typeof c.User === 'string' ? c.User : '',
  });
  if (c.Labels && typeof c.Labels === 'object') out.Labels = c.Labels as Record<string, string>;
  if (c.ExposedPorts && typeof c.ExposedPorts === 'object') out.ExposedPorts = c.ExposedPorts as Record<string, unknown>;
  if (typeof c.StopSignal === 'string') out.StopSignal = c.StopSignal;
  if (c.Volumes && typeof c.Volumes === 'object') out.Volumes = c.Volumes as Record<string, unknown>;
  const hc = c.Healthcheck as Record<string, unknown> | undefined;
  if (hc && typeof hc === 'object' && stringArray(hc.Test)) out.Healthcheck = hc as unknown as HealthConfig;
  const shell = stringArray(c.Shell);
  if (shell?.length) out.Shell = shell;
  const onBuild = stringArray(c.OnBuild);
  if (onBuild?.length) out.OnBuild = onBuild;
  return out;
}

/**
 * "docker.io/library/busybox:latest" → "busybox:latest"; "ghcr.io/x/y:1" → "x/y:1". Registry hosts are
 * dropped (poc has no registries); null when nothing usable is left.
 */
export function imageNameFromReference(ref: string | undefined): string | null {
  if (!ref) return null;
  let parts = ref.split('/');
  if (parts.length > 1 && /[.:]|^localhost$/.test(parts[0]!)) parts = parts.slice(1);
  if (parts[0] === 'library' && parts.length > 1) parts = parts.slice(1);
  let name = parts.join('/');
  name = name.replace(/@sha256:[a-f0-9]+$/, '');
  if (name.endsWith(':latest')) name = name.slice(0, -':latest'.length);
  try {
    return checkName('image', name);
  } catch {
    return null;
  }
}

/** "alpine-minirootfs-3.20.tar.gz" → "alpine-minirootfs-3.20". */
export function imageNameFromFile(path: string): string {
  const base = basename(path.replace(/\/+$/, ''))
    .replace(/\.(tar|tgz|tar\.gz|tar\.zst|tar\.xz|tar\.bz2|tzst|txz)$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return base === '' ? 'imported' : base;
}

export interface ArchiveImage {
  kind: 'docker-archive' | 'oci-layout';
  /** Paths relative to the archive directory, in order. */
  layers: Array<{ path: string; digest?: string }>;
  config: ImageConfig;
  architecture?: string;
  digest?: string;
  name: string | null;
}

type ReadJson = (relPath: string, digest?: string) => unknown;

/** What kind of archive a directory holds, if any. */
export function archiveKind(exists: (rel: string) => boolean, readJson: ReadJson): 'docker-archive' | 'oci-layout' | null {
  if (exists('manifest.json')) {
    try {
      const m = readJson('manifest.json');
      if (Array.isArray(m) && m.length > 0 && Array.isArray((m[0] as Record<string, unknown>)?.Layers)) return 'docker-archive';
    } catch {
      // not ours
    }
  }
  if (exists('oci-layout') && exists('index.json')) return 'oci-layout';
  return null;
}

/** docker save: manifest.json is a list of {Config, RepoTags, Layers}. */
export function planDockerArchive(readJson: ReadJson, wanted?: string): ArchiveImage {
  const manifest = readJson('manifest.json') as Array<Record<string, unknown>>;
  const tagsOf = (m: Record<string, unknown>) => stringArray(m.RepoTags) ?? [];
  const entry =
    (wanted && manifest.find((m) => tagsOf(m).some((t) => imageNameFromReference(t) === wanted || t === wanted))) || manifest[0]!;
  const configPath = archivePath(entry.Config);
  const config = readJson(configPath) as Record<string, unknown>;
  const layers = (stringArray(entry.Layers) ?? []).map((p) => ({ path: archivePath(p) }));
  const hex = /([a-f0-9]{64})(\.json)?$/.exec(configPath)?.[1];
  return {
    kind: 'docker-archive',
    layers,
    config: imageConfigFrom(config.config),
    ...(typeof config.architecture === 'string' ? { architecture: config.architecture } : {}),
    ...(hex ? { digest: `sha256:${hex}` } : {}),
    name: imageNameFromReference(tagsOf(entry)[0]),
  };
}

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

interface Descriptor {
  mediaType?: string;
  digest: string;
  annotations?: Record<string, string>;
  platform?: { architecture?: string; os?: string; variant?: string };
}

/** OCI image layout: index.json → (nested indexes →) a manifest for this platform → config and layers. */
export function planOciLayout(readJson: ReadJson, wanted?: string, arch = ociArchitecture()): ArchiveImage {
  const index = readJson('index.json') as { manifests?: Descriptor[] };
  const top = index.manifests ?? [];
  if (top.length === 0) throw new PocError('index.json lists no manifests');
  const refName = (d: Descriptor) => d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name'];
  let desc: Descriptor =
    (wanted && top.find((d) => imageNameFromReference(refName(d)) === wanted || refName(d) === wanted)) || top[0]!;
  const name = imageNameFromReference(refName(desc));
  for (let depth = 0; ; depth++) {
    if (depth > 4) throw new PocError('image indexes nested too deeply');
    const doc = readJson(blobPath(desc.digest), desc.digest) as Record<string, unknown>;
    const isIndex = INDEX_TYPES.has(String(desc.mediaType ?? doc.mediaType)) || (Array.isArray(doc.manifests) && !doc.layers);
    if (!isIndex) {
      const configDesc = doc.config as Descriptor | undefined;
      if (!configDesc || !Array.isArray(doc.layers)) throw new PocError(`manifest ${desc.digest} has no config or layers`);
      const config = readJson(blobPath(configDesc.digest), configDesc.digest) as Record<string, unknown>;
      return {
        kind: 'oci-layout',
        layers: (doc.layers as Descriptor[]).map((l) => ({ path: blobPath(l.digest), digest: l.digest })),
        config: imageConfigFrom(config.config),
        ...(typeof config.architecture === 'string' ? { architecture: config.architecture } : {}),
        digest: configDesc.digest,
        name,
      };
    }
    const manifests = (doc.manifests as Descriptor[]) ?? [];
    const forUs = manifests.filter((m) => (m.platform?.os ?? 'linux') === 'linux' && (m.platform?.architecture ?? arch) === arch);
    const chosen = forUs[0];
    if (!chosen) {
      const have = manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).join(', ');
      throw new PocError(`no linux/${arch} image in the index (it has ${have || 'none'})`);
    }
    desc = chosen;
  }
}

// ---------------------------------------------------------------------------------------------------------
// the import itself

function dirReaders(dir: string): { exists: (rel: string) => boolean; readJson: ReadJson } {
  return {
    exists: (rel) => existsSync(join(dir, rel)),
    readJson: (rel, digest) => {
      const data = readFileSync(join(dir, archivePath(rel)));
      if (digest) {
        const [alg, hex] = digest.split(':');
        if (createHash(alg!).update(data).digest('hex') !== hex) throw new PocError(`${rel} does not match its digest ${digest}`);
      }
      try {
        return JSON.parse(data.toString('utf8'));
      } catch (err) {
        throw new PocError(`${rel} is not valid JSON (${(err as Error).message})`);
      }
    },
  };
}

async function applyArchive(dir: string, plan: ArchiveImage, rootfs: string, onProgress?: (p: ImportProgress) => void): Promise<string[]> {
  const skippedXattrs: string[] = [];
  for (const [i, layer] of plan.layers.entries()) {
    onProgress?.({ layer: i + 1, layers: plan.layers.length });
    const path = join(dir, layer.path);
    const [alg, hex] = layer.digest?.split(':') ?? [];
    const hash = alg ? createHash(alg) : undefined;
    try {
      skippedXattrs.push(...(await applyLayer(rootfs, openDecompressed(path, hash))).skippedXattrs);
    } catch (err) {
      throw wrapError(`layer ${i + 1} of ${plan.layers.length} (${layer.path})`, err);
    }
    if (hash && hash.digest('hex') !== hex) throw new PocError(`layer ${layer.path} does not match its digest ${layer.digest}`);
  }
  return skippedXattrs;
}

/**
 * Imports an image and returns its record. `name` defaults to the archive's own tag, else the file name.
 * On any failure nothing is left in the store.
 */
export async function importImage(path: string, name?: string, opts: ImportOptions = {}): Promise<ImageRecord> {
  if (name !== undefined) checkName('image', name);
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw wrapError(`import ${path}`, err);
  }
  const staging = createStaging(opts);
  try {
    let kind: ImageSourceKind;
    let plan: ArchiveImage | null = null;
    let archiveDir: string;
    let skippedXattrs: string[] = [];
    if (st.isDirectory()) {
      archiveDir = path;
    } else {
      // Extract as if it were a rootfs; then see whether it was an archive of layers.
      skippedXattrs = (await applyLayer(staging.rootfs, openDecompressed(path))).skippedXattrs;
      archiveDir = staging.rootfs;
    }
    const readers = dirReaders(archiveDir);
    const found = archiveKind(readers.exists, readers.readJson);
    if (found === null) {
      if (st.isDirectory()) {
        throw new PocError('not an image archive: a directory must be an OCI image layout (oci-layout, index.json) or an unpacked docker save (manifest.json)');
      }
      kind = 'tarball';
    } else {
      kind = found;
      plan = found === 'docker-archive' ? planDockerArchive(readers.readJson, name) : planOciLayout(readers.readJson, name);
      if (archiveDir === staging.rootfs) {
        archiveDir = join(staging.dir, 'archive');
        renameSync(staging.rootfs, archiveDir);
        mkdirSync(staging.rootfs, { mode: 0o755 });
      }
      skippedXattrs = await applyArchive(archiveDir, plan, staging.rootfs, opts.onProgress);
      if (archiveDir !== path) rmSync(archiveDir, { recursive: true, force: true });
    }
    if (skippedXattrs.length) {
      const more = skippedXattrs.length > 1 ? ` and ${skippedXattrs.length - 1} more` : '';
      opts.onWarning?.(`extended attributes that could not be set were left out: ${skippedXattrs[0]}${more}`);
    }
    return await commitImage(staging, {
      ...opts,
      name: name ?? plan?.name ?? imageNameFromFile(path),
      source: { kind, path },
      config: plan?.config ?? defaultImageConfig(),
      ...(plan?.digest ? { digest: plan.digest } : {}),
      ...(plan?.architecture ? { architecture: plan.architecture } : {}),
    });
  } catch (err) {
    staging.discard();
    throw wrapError(`import ${path}`, err);
  }
}
