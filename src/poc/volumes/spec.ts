/**
 * `-v` and `--mount` → the container's mounts (pure, table-tested): docker's two syntaxes for binds, named and
 * anonymous volumes, and tmpfs. Every bad value is one error naming the flag, the value and the rule.
 */
import { PocError } from '../errors.js';

export type Propagation = 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';
const PROPAGATIONS: readonly Propagation[] = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

/**
 * One mount of a container, as container.json keeps it. `type` is absent in records made before volumes (a bind).
 * source: the host path (bind), the volume's name (volume; made up at create for an anonymous one), '' (tmpfs).
 */
export interface Volume {
  type?: 'bind' | 'volume' | 'tmpfs';
  source: string;
  destination: string;
  readOnly: boolean;
  /** volume: made by this container for its own use (`-v /path`, an image's VOLUME): `rm -v` removes it. */
  anonymous?: boolean;
  /** volume: do not fill a new volume from the image (-v ...:nocopy, --mount volume-nocopy). */
  noCopy?: boolean;
  /** bind: the mount's propagation (default rprivate, as docker's). */
  propagation?: Propagation;
  /** tmpfs: bytes (0 or absent: the kernel's default, half the memory) and mode (default 01777). */
  tmpfsSize?: number;
  tmpfsMode?: number;
}

export const volumeType = (v: Volume) => v.type ?? 'bind';

/** Docker's rule for volume names. */
const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export function checkVolumeName(name: string, where: string): string {
  if (!VOLUME_NAME_RE.test(name) || name.length > 255) {
    throw new PocError(`${where}: invalid volume name ${JSON.stringify(name)}: at least 2 characters, letters, digits and _.- (not first)`);
  }
  return name;
}

function normalize(path: string): string {
  return `/${path.split('/').filter((c) => c !== '' && c !== '.').join('/')}`;
}

function checkTarget(path: string, where: string): string {
  if (!path.startsWith('/')) throw new PocError(`${where}: the container path ${JSON.stringify(path)} is not absolute`);
  if (path.split('/').includes('..')) throw new PocError(`${where}: the container path may not contain ".."`);
  const n = normalize(path);
  if (n === '/') throw new PocError(`${where}: the container path cannot be "/"`);
  return n;
}

/**
 * `-v SRC:DST[:OPTS]` or `-v DST`: SRC absolute is a bind, a name a named volume, nothing an anonymous volume.
 * OPTS: comma-separated ro, rw, nocopy (volumes), and a propagation mode (binds).
 */
export function parseVolumeFlag(spec: string): Volume {
  const where = `invalid volume ${JSON.stringify(spec)} for -v`;
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new PocError(`${where}: use HOST_PATH:CONTAINER_PATH[:ro], NAME:CONTAINER_PATH[:ro] or CONTAINER_PATH`);
  if (parts.length === 1) return { type: 'volume', source: '', destination: checkTarget(parts[0]!, where), readOnly: false, anonymous: true };
  const [source, destination, opts = ''] = parts as [string, string, string?];
  const bind = source.startsWith('/');
  if (!bind && source.includes('/')) throw new PocError(`${where}: the host path ${JSON.stringify(source)} is not absolute (and a volume name has no "/")`);
  const v: Volume = bind
    ? { type: 'bind', source: normalize(source), destination: checkTarget(destination, where), readOnly: false }
    : { type: 'volume', source: checkVolumeName(source, where), destination: checkTarget(destination, where), readOnly: false };
  for (const o of opts === '' ? [] : opts.split(',')) {
    if (o === 'ro' || o === 'rw') v.readOnly = o === 'ro';
    else if (o === 'nocopy' && !bind) v.noCopy = true;
    else if ((PROPAGATIONS as readonly string[]).includes(o) && bind) v.propagation = o as Propagation;
    else {
      const allowed = bind ? 'ro, rw and a propagation (rprivate, rshared, rslave, private, shared, slave)' : 'ro, rw and nocopy';
      throw new PocError(`${where}: option ${JSON.stringify(o)} is not one of ${allowed}`);
    }
  }
  return v;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function parseBool(value: string | undefined, where: string, key: string): boolean {
  if (value === undefined || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new PocError(`${where}: ${key}=${value}: use true or false`);
}

/**
 * `--mount type=bind|volume|tmpfs,source=..,target=..,...` with docker's keys: source/src, target/dst/destination,
 * readonly/ro, volume-nocopy, tmpfs-size, tmpfs-mode, bind-propagation. type defaults to volume, as docker's.
 */
export function parseMountFlag(spec: string): Volume {
  const where = `invalid --mount ${JSON.stringify(spec)}`;
  const kv = new Map<string, string | undefined>();
  for (const field of spec.split(',')) {
    if (field === '') continue;
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const canonical = ({ src: 'source', dst: 'target', destination: 'target', ro: 'readonly' } as Record<string, string>)[key] ?? key;
    if (kv.has(canonical)) throw new PocError(`${where}: ${key} given more than once`);
    kv.set(canonical, eq < 0 ? undefined : field.slice(eq + 1));
  }
  const type = kv.get('type') ?? 'volume';
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw new PocError(`${where}: type ${JSON.stringify(type)} is not bind, volume or tmpfs`);
  const allowed: Record<string, string[]> = {
    bind: ['type', 'source', 'target', 'readonly', 'bind-propagation'],
    volume: ['type', 'source', 'target', 'readonly', 'volume-nocopy'],
    tmpfs: ['type', 'target', 'readonly', 'tmpfs-size', 'tmpfs-mode'],
  };
  for (const key of kv.keys()) {
    if (!allowed[type]!.includes(key)) {
      const known = ['type', 'source', 'src', 'target', 'dst', 'destination', 'readonly', 'ro', 'volume-nocopy', 'bind-propagation', 'tmpfs-size', 'tmpfs-mode'];
      throw new PocError(known.includes(key) ? `${where}: ${key} does not apply to type=${type}` : `${where}: unknown key ${JSON.stringify(key)}`);
    }
  }
  const target = kv.get('target');
  if (!target) throw new PocError(`${where}: target is missing (target=/path in the container)`);
  const v: Volume = { type, source: '', destination: checkTarget(target, where), readOnly: kv.has('readonly') && parseBool(kv.get('readonly'), where, 'readonly') };
  const source = kv.get('source');
  if (type === 'bind') {
    if (!source) throw new PocError(`${where}: a bind needs source=/host/path`);
    if (!source.startsWith('/')) throw new PocError(`${where}: the bind source ${JSON.stringify(source)} is not absolute`);
    v.source = normalize(source);
    const p = kv.get('bind-propagation');
    if (p !== undefined) {
      if (!(PROPAGATIONS as readonly string[]).includes(p)) throw new PocError(`${where}: bind-propagation ${JSON.stringify(p)} is not one of ${PROPAGATIONS.join(', ')}`);
      v.propagation = p as Propagation;
    }
  } else if (type === 'volume') {
    if (source) v.source = checkVolumeName(source, where);
    else v.anonymous = true;
    if (kv.has('volume-nocopy') && parseBool(kv.get('volume-nocopy'), where, 'volume-nocopy')) v.noCopy = true;
  } else {
    const size = kv.get('tmpfs-size');
    if (size !== undefined) {
      const m = /^(\d+)([bkmg]?)$/i.exec(size);
      if (!m) throw new PocError(`${where}: tmpfs-size ${JSON.stringify(size)}: use a number of bytes with an optional unit k, m or g`);
      v.tmpfsSize = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
    }
    const mode = kv.get('tmpfs-mode');
    if (mode !== undefined) {
      if (!/^[0-7]{1,4}$/.test(mode)) throw new PocError(`${where}: tmpfs-mode ${JSON.stringify(mode)}: use an octal mode such as 1777`);
      v.tmpfsMode = parseInt(mode, 8);
    }
  }
  return v;
}

/** Two mounts on one container path are an error, as with docker. */
export function checkDuplicateTargets(volumes: Volume[]): void {
  const seen = new Set<string>();
  for (const v of volumes) {
    if (seen.has(v.destination)) throw new PocError(`duplicate mount point: ${v.destination} is given twice (-v, --mount)`);
    seen.add(v.destination);
  }
}

/**
 * An image's VOLUME paths not already covered by a mount of the user's: each gets an anonymous volume, as with
 * docker. Sorted, so that a parent directory is mounted before its children.
 */
export function imageVolumes(imageVolumes: Record<string, unknown> | undefined, given: Volume[]): Volume[] {
  const taken = new Set(given.map((v) => v.destination));
  return Object.keys(imageVolumes ?? {})
    .filter((p) => p.startsWith('/'))
    .map((p) => normalize(p))
    .filter((p) => p !== '/' && !taken.has(p))
    .sort()
    .map((destination) => ({ type: 'volume' as const, source: '', destination, readOnly: false, anonymous: true }));
}

/** The OCI mount's options for a tmpfs (docker's: noexec, nosuid, nodev, then mode and size). */
export function tmpfsOptions(v: Volume): string[] {
  const out = ['noexec', 'nosuid', 'nodev', 'rprivate', v.readOnly ? 'ro' : 'rw'];
  if (v.tmpfsMode !== undefined) out.push(`mode=${v.tmpfsMode.toString(8)}`);
  if (v.tmpfsSize) out.push(`size=${Math.ceil(v.tmpfsSize / 1024)}k`);
  return out;
}

/** docker inspect's Mounts entry. */
export function describeMount(v: Volume, volumePath: (name: string) => string): Record<string, unknown> {
  const type = volumeType(v);
  const base = { Type: type, Destination: v.destination, Mode: v.readOnly ? 'ro' : '', RW: !v.readOnly };
  if (type === 'bind') return { ...base, Source: v.source, Propagation: v.propagation ?? 'rprivate' };
  if (type === 'volume') return { ...base, Name: v.source, Source: volumePath(v.source), Driver: 'local', Mode: v.readOnly ? 'ro' : 'z', Propagation: '' };
  return { ...base, Source: '', Propagation: '' };
}
