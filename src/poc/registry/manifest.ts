/**
 * Manifests and indexes (image-spec v1.1 and Docker's v2 schema 2), pure: which media types poc reads, checking
 * a manifest's shape, and choosing the host's platform from an index or a manifest list.
 */
import { PocError } from '../errors.js';

export const MEDIA = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

/** The Accept header of a manifest request: every kind poc can read, images and indexes. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ');

const LAYER_TYPES = new Set<string>([MEDIA.dockerLayerGzip, MEDIA.ociLayer, MEDIA.ociLayerGzip, MEDIA.ociLayerZstd]);

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: string;
  manifests: Descriptor[];
}

export type Parsed = { kind: 'manifest'; manifest: ImageManifest } | { kind: 'index'; index: ImageIndex };

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function checkDescriptor(d: unknown, where: string): Descriptor {
  const o = d as Record<string, unknown>;
  if (!o || typeof o !== 'object') throw new PocError(`${where} is not a descriptor`);
  if (typeof o.digest !== 'string' || !DIGEST.test(o.digest)) throw new PocError(`${where}: unsupported digest ${JSON.stringify(o.digest)} (sha256 expected)`);
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw new PocError(`${where}: invalid size ${JSON.stringify(o.size)}`);
  if (typeof o.mediaType !== 'string') throw new PocError(`${where}: no mediaType`);
  return o as unknown as Descriptor;
}

/**
 * Parses a manifest body. `contentType` is the registry's Content-Type; the body's own mediaType wins when it
 * has one. Schema 1 manifests (deprecated, signed) are refused.
 */
export function parseManifest(body: Buffer | string, contentType: string | null, what: string): Parsed {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(body.toString()) as Record<string, unknown>;
  } catch (err) {
    throw new PocError(`${what}: the manifest is not valid JSON (${(err as Error).message})`);
  }
  const mediaType = (typeof doc.mediaType === 'string' ? doc.mediaType : (contentType ?? '').split(';')[0]!.trim()) || '';
  if (doc.schemaVersion === 1 || mediaType.startsWith('application/vnd.docker.distribution.manifest.v1')) {
    throw new PocError(`${what}: Docker schema 1 manifests are not supported (deprecated; push the image again with a current client)`);
  }
  if (doc.schemaVersion !== 2) throw new PocError(`${what}: unsupported manifest schemaVersion ${JSON.stringify(doc.schemaVersion)}`);
  const isIndex = mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerList || (mediaType === '' && Array.isArray(doc.manifests));
  if (isIndex) {
    if (!Array.isArray(doc.manifests)) throw new PocError(`${what}: the index has no manifests`);
    const manifests = doc.manifests.map((d, i) => checkDescriptor(d, `${what}: manifests[${i}]`));
    return { kind: 'index', index: { schemaVersion: 2, mediaType: mediaType || MEDIA.ociIndex, manifests } };
  }
  if (mediaType !== MEDIA.ociManifest && mediaType !== MEDIA.dockerManifest && mediaType !== '') {
    throw new PocError(`${what}: unsupported manifest type ${JSON.stringify(mediaType)}`);
  }
  const config = checkDescriptor(doc.config, `${what}: config`);
  if (!Array.isArray(doc.layers)) throw new PocError(`${what}: the manifest has no layers`);
  const layers = doc.layers.map((d, i) => checkDescriptor(d, `${what}: layers[${i}]`));
  for (const [i, l] of layers.entries()) {
    if (l.mediaType === MEDIA.dockerForeignLayer || l.mediaType.includes('nondistributable')) {
      throw new PocError(`${what}: layers[${i}] is a foreign layer (${l.mediaType}), which poc does not fetch`);
    }
    if (!LAYER_TYPES.has(l.mediaType)) throw new PocError(`${what}: layers[${i}] has unsupported media type ${JSON.stringify(l.mediaType)}`);
  }
  return { kind: 'manifest', manifest: { schemaVersion: 2, mediaType: mediaType || MEDIA.ociManifest, config, layers } };
}

/** Docker's names for node's process.arch, and the variant an arm host runs. */
export function hostPlatform(arch: string = process.arch): Platform {
  switch (arch) {
    case 'x64':
      return { os: 'linux', architecture: 'amd64' };
    case 'arm64':
      return { os: 'linux', architecture: 'arm64', variant: 'v8' };
    case 'arm':
      return { os: 'linux', architecture: 'arm', variant: 'v7' };
    case 'ia32':
      return { os: 'linux', architecture: '386' };
    case 'ppc64':
      return { os: 'linux', architecture: 'ppc64le' };
    default:
      return { os: 'linux', architecture: arch };
  }
}

const KNOWN_OS = new Set(['aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos']);
const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le', 'mips64p32',
  'mips64p32le', 'ppc', 'ppc64', 'ppc64le', 'riscv', 'riscv64', 's390', 's390x', 'sparc', 'sparc64', 'wasm',
]);

/** containerd's platforms.Normalize: the usual spellings (x86_64, aarch64, armhf, i386) to OCI's, default variants. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase() === 'macos' ? 'darwin' : p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() ?? '';
  switch (architecture) {
    case 'i386':
      architecture = '386';
      variant = '';
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = '';
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = '';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === '') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
  }
  return { os, architecture, ...(variant ? { variant } : {}) };
}

/**
 * A platform as docker's and containerd's flags take it (platforms.Parse), normalized: `os/arch[/variant]`, or an
 * architecture alone (this machine's os) or an os alone (this machine's architecture). Null when it is not one.
 */
export function parsePlatform(text: string, host: Platform = hostPlatform()): Platform | null {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length > 3 || parts.some((x) => !/^[a-z0-9_.-]+$/.test(x))) return null;
  if (parts.length === 1) {
    const [one] = parts as [string];
    if (KNOWN_OS.has(one) || one === 'macos') return normalizePlatform({ ...host, os: one });
    const p = normalizePlatform({ os: host.os, architecture: one });
    return KNOWN_ARCH.has(p.architecture) ? p : null;
  }
  const p = normalizePlatform({ os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) });
  return KNOWN_OS.has(p.os) && KNOWN_ARCH.has(p.architecture) ? p : null;
}

/** `os/arch[/variant]`, normalized. */
export function formatPlatform(p: Platform): string {
  const n = normalizePlatform(p);
  return `${n.os}/${n.architecture}${n.variant ? `/${n.variant}` : ''}`;
}

/**
 * The entry of an index for a platform, as containerd's platform matcher picks it: same os and architecture;
 * among those the same variant first, then one without a variant (arm64's v8 is its default), then any.
 * Attestation entries (os "unknown") never match.
 */
export function choosePlatform(index: ImageIndex, want: Platform, what: string): Descriptor {
  const same = index.manifests.filter((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture);
  const pick =
    same.find((m) => want.variant !== undefined && m.platform!.variant === want.variant) ??
    same.find((m) => !m.platform!.variant) ??
    same[0];
  if (!pick) {
    const have = index.manifests
      .filter((m) => m.platform && m.platform.os !== 'unknown')
      .map((m) => `${m.platform!.os}/${m.platform!.architecture}${m.platform!.variant ? `/${m.platform!.variant}` : ''}`);
    throw new PocError(`${what}: no image for ${want.os}/${want.architecture} (it has ${have.join(', ') || 'no platforms'})`);
  }
  return pick;
}

/** The uncompressed digests of the layers, from the image config (rootfs.diff_ids), checked against the manifest. */
export function diffIds(config: Record<string, unknown>, layers: number, what: string): string[] {
  const rootfs = config.rootfs as { diff_ids?: unknown } | undefined;
  const ids = rootfs?.diff_ids;
  if (!Array.isArray(ids) || !ids.every((d) => typeof d === 'string' && DIGEST.test(d))) {
    throw new PocError(`${what}: the image config has no rootfs.diff_ids`);
  }
  if (ids.length !== layers) throw new PocError(`${what}: the config lists ${ids.length} layers and the manifest ${layers}`);
  return ids as string[];
}
