/**
 * The user's existing registry configuration, read as podman and skopeo read it:
 * - registries.conf (containers-registries.conf(5), v2 and the old v1 tables): short-name search list and
 *   aliases, insecure and blocked registries, prefix rewrites. CONTAINERS_REGISTRIES_CONF names the one file to
 *   read instead of /etc/containers/registries.conf and its registries.conf.d/ drop-ins.
 * - credentials (containers-auth.json(5)): --authfile or REGISTRY_AUTH_FILE alone, else
 *   $XDG_RUNTIME_DIR/containers/auth.json, $XDG_CONFIG_HOME/containers/auth.json, ~/.docker/config.json
 *   ($DOCKER_CONFIG), the first that has the registry; in each, a credHelpers entry, the auths, then a
 *   credsStore (docker-credential-NAME get), as docker reads them.
 * - TLS: certs.d directories (containers-certs.d(5)): *.crt are CAs, *.cert + *.key a client certificate.
 *
 * Parsing and lookups are pure (tables in test/unit/poc-registry.test.ts); reading files is in the few
 * functions named load*.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { PocError, describeSystemError, errnoCode, wrapError } from '../errors.js';
import { writeFileAtomic } from '../poc-root.js';
import { DOCKER_HUB, parseReference, qualify, type Qualified, type Reference } from './reference.js';

// ---------------------------------------------------------------------------------------------------------
// registries.conf

export interface RegistryEntry {
  /** What it matches: a host, host/path, or `*.domain`. */
  prefix: string;
  /** Where to go instead (default: the prefix itself). */
  location: string;
  insecure: boolean;
  blocked: boolean;
  /** `[[registry.mirror]]`: where a pull tries first, in order, before the location. */
  mirrors: Mirror[];
}

/** Which references a mirror serves (`pull-from-mirror`; the older `mirror-by-digest-only = true` is "digest-only"). */
export type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

export interface Mirror {
  location: string;
  insecure: boolean;
  pullFrom: PullFromMirror;
}

export interface RegistriesConf {
  /** The files read, for messages. */
  files: string[];
  search: string[];
  aliases: Record<string, string>;
  registries: RegistryEntry[];
}

const EMPTY_CONF = (): RegistriesConf => ({ files: [], search: [], aliases: {}, registries: [] });

const asStrings = (v: unknown, where: string): string[] => {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new PocError(`${where}: expected a list of strings`);
  return v as string[];
};

/** Merges one file's text into conf (a later file overrides what it sets, as the drop-ins do). */
export function mergeRegistriesConf(conf: RegistriesConf, text: string, file: string): RegistriesConf {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new PocError(`${file}: invalid TOML: ${(err as Error).message.split('\n')[0]}`);
  }
  const out: RegistriesConf = { files: [...conf.files, file], search: conf.search, aliases: { ...conf.aliases }, registries: [...conf.registries] };
  if (doc['unqualified-search-registries'] !== undefined) out.search = asStrings(doc['unqualified-search-registries'], `${file}: unqualified-search-registries`);
  const aliases = doc.aliases;
  if (aliases !== undefined) {
    if (typeof aliases !== 'object' || aliases === null) throw new PocError(`${file}: [aliases] must be a table`);
    for (const [k, v] of Object.entries(aliases)) {
      if (typeof v !== 'string') throw new PocError(`${file}: aliases.${JSON.stringify(k)} must be a string`);
      out.aliases[k] = v;
    }
  }
  const put = (e: RegistryEntry) => {
    out.registries = out.registries.filter((r) => r.prefix !== e.prefix);
    out.registries.push(e);
  };
  const list = doc.registry;
  if (list !== undefined) {
    if (!Array.isArray(list)) throw new PocError(`${file}: [[registry]] must be an array of tables`);
    list.forEach((r: Record<string, unknown>, i) => {
      const where = `${file}: registry[${i}]`;
      const location = r.location ?? '';
      const prefix = r.prefix ?? location;
      if (typeof location !== 'string' || typeof prefix !== 'string' || prefix === '') throw new PocError(`${where}: needs a location or a prefix`);
      const byDigestOnly = r['mirror-by-digest-only'] === true;
      const mirrors = r.mirror === undefined ? [] : r.mirror;
      if (!Array.isArray(mirrors)) throw new PocError(`${where}: [[registry.mirror]] must be an array of tables`);
      put({
        prefix,
        location: location === '' ? prefix : location,
        insecure: r.insecure === true,
        blocked: r.blocked === true,
        mirrors: mirrors.map((m: Record<string, unknown>, j) => parseMirror(m, `${where}.mirror[${j}]`, byDigestOnly)),
      });
    });
  }
  // The v1 format: [registries.search] registries = [...], [registries.insecure], [registries.block].
  const v1 = doc.registries as Record<string, { registries?: unknown }> | undefined;
  if (v1 && typeof v1 === 'object') {
    if (v1.search) out.search = asStrings(v1.search.registries, `${file}: registries.search.registries`);
    for (const host of asStrings(v1.insecure?.registries, `${file}: registries.insecure.registries`)) {
      put({ prefix: host, location: host, insecure: true, blocked: false, mirrors: [] });
    }
    for (const host of asStrings(v1.block?.registries, `${file}: registries.block.registries`)) {
      put({ prefix: host, location: host, insecure: false, blocked: true, mirrors: [] });
    }
  }
  return out;
}

function parseMirror(m: Record<string, unknown>, where: string, byDigestOnly: boolean): Mirror {
  if (typeof m !== 'object' || m === null || typeof m.location !== 'string' || m.location === '') throw new PocError(`${where}: needs a location`);
  const pullFrom = m['pull-from-mirror'] ?? (byDigestOnly ? 'digest-only' : 'all');
  if (pullFrom !== 'all' && pullFrom !== 'digest-only' && pullFrom !== 'tag-only') {
    throw new PocError(`${where}: pull-from-mirror is ${JSON.stringify(pullFrom)}; it must be "all", "digest-only" or "tag-only"`);
  }
  return { location: m.location, insecure: m.insecure === true, pullFrom };
}

export function parseRegistriesConf(text: string, file = 'registries.conf'): RegistriesConf {
  return mergeRegistriesConf(EMPTY_CONF(), text, file);
}

/** Reads the registries.conf that podman would read. */
export function loadRegistriesConf(env: NodeJS.ProcessEnv = process.env): RegistriesConf {
  const only = env.CONTAINERS_REGISTRIES_CONF;
  const files: string[] = [];
  if (only) files.push(only);
  else {
    const user = (process.getuid?.() ?? 0) !== 0 ? join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'containers/registries.conf') : null;
    const main = user && existsSync(user) ? user : '/etc/containers/registries.conf';
    files.push(main);
    const dropins = join(dirname(main), 'registries.conf.d');
    try {
      for (const n of readdirSync(dropins).sort()) if (n.endsWith('.conf')) files.push(join(dropins, n));
    } catch {
      // no drop-ins
    }
  }
  let conf = EMPTY_CONF();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' && !only) continue;
      throw wrapError(`read ${file}`, err);
    }
    conf = mergeRegistriesConf(conf, text, file);
  }
  return conf;
}

/** The most specific [[registry]] entry for host/repository, if any. */
export function registryEntry(conf: RegistriesConf, registry: string, repository = ''): RegistryEntry | undefined {
  const full = repository ? `${registry}/${repository}` : registry;
  let best: RegistryEntry | undefined;
  let bestLen = -1;
  for (const e of conf.registries) {
    let len = -1;
    if (e.prefix.startsWith('*.')) {
      const host = registry.replace(/:\d+$/, '');
      if (host.endsWith(e.prefix.slice(1))) len = e.prefix.length;
    } else if (full === e.prefix || full.startsWith(`${e.prefix}/`)) len = e.prefix.length;
    if (len > bestLen) {
      best = e;
      bestLen = len;
    }
  }
  return best;
}

/** Where a qualified reference is really fetched from (a prefix rewritten to its location), or an error if blocked. */
export function rewrite(conf: RegistriesConf, ref: Qualified): { ref: Qualified; insecure: boolean } {
  const e = registryEntry(conf, ref.registry, ref.repository);
  if (!e) return { ref, insecure: false };
  if (e.blocked) throw new PocError(`registry ${ref.registry} is blocked in ${conf.files.join(', ') || 'registries.conf'}`);
  if (e.location === e.prefix || e.prefix.startsWith('*.')) return { ref, insecure: e.insecure };
  return { ref: relocate(e, ref, e.location), insecure: e.insecure };
}

/** A reference with the part its entry's prefix matched replaced by `location`. */
function relocate(e: RegistryEntry, ref: Qualified, location: string): Qualified {
  // A wildcard prefix (*.example.com) matches the host alone.
  const matched = e.prefix.startsWith('*.') ? ref.registry : e.prefix;
  const full = `${location}${`${ref.registry}/${ref.repository}`.slice(matched.length)}`;
  const slash = full.indexOf('/');
  return { ...ref, registry: full.slice(0, slash), repository: full.slice(slash + 1) };
}

/**
 * Where a pull of a qualified reference may come from, in the order to try: the mirrors of its [[registry]]
 * entry that serve this kind of reference (by digest or by tag), then its location, as containers/image tries
 * them. A push never goes to a mirror.
 */
export function pullSources(conf: RegistriesConf, ref: Qualified): Array<{ ref: Qualified; insecure: boolean; mirror: boolean }> {
  const primary = { ...rewrite(conf, ref), mirror: false };
  const e = registryEntry(conf, ref.registry, ref.repository);
  if (!e) return [primary];
  const byDigest = ref.digest !== undefined;
  const mirrors = e.mirrors
    .filter((m) => m.pullFrom === 'all' || (m.pullFrom === 'digest-only') === byDigest)
    .map((m) => ({ ref: relocate(e, ref, m.location), insecure: m.insecure, mirror: true }));
  return [...mirrors, primary];
}

export function isInsecure(conf: RegistriesConf, registry: string): boolean {
  return registryEntry(conf, registry)?.insecure ?? false;
}

/**
 * The fully qualified references a name stands for, in the order to try: itself when it names a registry;
 * else an alias; else each unqualified-search-registry. A short name with none of these is an error: poc never
 * guesses a registry the configuration does not name.
 */
export function candidates(ref: Reference, conf: RegistriesConf): Qualified[] {
  if (ref.registry) return [qualify(ref, ref.registry)];
  const alias = conf.aliases[ref.repository];
  if (alias !== undefined) {
    const target = parseReference(alias);
    if (!target.registry) throw new PocError(`alias ${JSON.stringify(ref.repository)} = ${JSON.stringify(alias)} does not name a registry`);
    return [qualify({ ...target, ...(ref.tag ? { tag: ref.tag } : {}), ...(ref.digest ? { digest: ref.digest } : {}) }, target.registry)];
  }
  return conf.search.map((host) => qualify(ref, host));
}

// ---------------------------------------------------------------------------------------------------------
// credentials

export interface Credentials {
  username: string;
  password: string;
  /**
   * Docker's `identitytoken` (an OAuth2 refresh token, as `docker login` keeps for registries that give one, or a
   * credential helper's secret for the user "<token>"): exchanged for bearer tokens instead of the password.
   */
  identityToken?: string;
}

export interface AuthFiles {
  /** Files to read, in order. */
  read: string[];
  /** The file login writes and logout edits. */
  write: string;
}

export function authFiles(authfile: string | undefined, env: NodeJS.ProcessEnv = process.env, uid = process.getuid?.() ?? 0): AuthFiles {
  const only = authfile ?? env.REGISTRY_AUTH_FILE;
  if (only) return { read: [only], write: only };
  const home = env.HOME || homedir();
  const runtime = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'containers/auth.json') : `/run/containers/${uid}/auth.json`;
  const config = join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers/auth.json');
  const docker = join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json');
  return { read: [runtime, config, docker], write: runtime };
}

interface AuthJson {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  /** Docker's credential helpers: one per registry, and one for all the others. */
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

/**
 * Which credential helper (`docker-credential-NAME`) an auth file names for a registry, if any: its credHelpers
 * entry, else its credsStore when the file's auths have nothing for it (docker's order).
 */
export function credentialHelper(doc: AuthJson, registry: string): string | undefined {
  for (const [k, v] of Object.entries(doc.credHelpers ?? {})) if (normalizeAuthKey(k) === registry && v) return v;
  return doc.credsStore || undefined;
}

/** The server name a helper is asked about: Docker Hub's is its v1 URL, as docker stores it. */
const helperServer = (registry: string) => (registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry);

/** `docker-credential-NAME get`: the registry on stdin, `{"Username","Secret"}` on stdout; none: not found. */
function runCredentialHelper(helper: string, registry: string, file: string): Credentials | undefined {
  const program = `docker-credential-${helper}`;
  const r = spawnSync(program, ['get'], { input: helperServer(registry), encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new PocError(`${file} names the credential helper ${JSON.stringify(helper)}, but ${program} cannot run: ${describeSystemError(r.error)}`);
  if (r.status !== 0) {
    if (/credentials not found/i.test(`${r.stdout}${r.stderr}`)) return undefined;
    throw new PocError(`${program} get ${registry} failed: ${(r.stderr || r.stdout).trim() || `exit ${r.status}`}`);
  }
  try {
    const doc = JSON.parse(r.stdout) as { Username?: string; Secret?: string };
    if (typeof doc.Username === 'string' && typeof doc.Secret === 'string' && doc.Secret !== '') {
      // docker's convention: the user "<token>" means the secret is an identity token.
      if (doc.Username === '<token>') return { username: '', password: '', identityToken: doc.Secret };
      return { username: doc.Username, password: doc.Secret };
    }
  } catch {
    // below
  }
  throw new PocError(`${program} get ${registry}: not the {"Username","Secret"} JSON a credential helper prints`);
}

/** "https://index.docker.io/v1/" → "docker.io", "https://host:5000" → "host:5000". */
export function normalizeAuthKey(key: string): string {
  let k = key.replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (/^(index\.|registry-1\.)?docker\.io(\/v1)?$/.test(k)) return DOCKER_HUB;
  k = k.replace(/\/v[12]$/, '');
  return k;
}

/** The credentials for host[/repository] in one auth file's JSON, the most specific key first. */
export function credentialsIn(doc: AuthJson, registry: string, repository = '', file = 'auth file'): Credentials | undefined {
  const auths = doc.auths ?? {};
  const byKey = new Map(Object.entries(auths).map(([k, v]) => [normalizeAuthKey(k), v]));
  const parts = repository ? repository.split('/') : [];
  for (let n = parts.length; n >= 0; n--) {
    const key = n > 0 ? `${registry}/${parts.slice(0, n).join('/')}` : registry;
    const entry = byKey.get(key);
    if (!entry) continue;
    if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
      // The "auth" beside it, if any, holds the user name alone ("user:").
      const user = typeof entry.auth === 'string' ? Buffer.from(entry.auth, 'base64').toString('utf8').split(':')[0]! : (entry.username ?? '');
      return { username: user, password: '', identityToken: entry.identitytoken };
    }
    if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const text = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = text.indexOf(':');
      if (colon < 0) throw new PocError(`${file}: the "auth" of ${key} is not base64 of user:password`);
      return { username: text.slice(0, colon), password: text.slice(colon + 1) };
    }
  }
  return undefined;
}

function readAuthJson(file: string): AuthJson | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw wrapError(`read ${file}`, err);
  }
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as AuthJson;
  } catch (err) {
    throw new PocError(`${file} is not valid JSON (${(err as Error).message})`);
  }
}

/** The credentials for a registry from the first auth file that has them. */
export function loadCredentials(files: AuthFiles, registry: string, repository = ''): (Credentials & { file: string }) | undefined {
  for (const file of files.read) {
    const doc = readAuthJson(file);
    if (!doc) continue;
    const own = doc.credHelpers && Object.keys(doc.credHelpers).some((k) => normalizeAuthKey(k) === registry);
    const c = own ? undefined : credentialsIn(doc, registry, repository, file);
    if (c) return { ...c, file };
    const helper = credentialHelper(doc, registry);
    const fromHelper = helper ? runCredentialHelper(helper, registry, file) : undefined;
    if (fromHelper) return { ...fromHelper, file: `${file} (docker-credential-${helper})` };
  }
  return undefined;
}

/** login: stores user:password for the registry (base64, as docker and podman store it), file mode 0600. */
export function saveCredentials(file: string, registry: string, creds: Credentials): void {
  const doc = readAuthJson(file) ?? {};
  const auths = { ...(doc.auths ?? {}) };
  for (const k of Object.keys(auths)) if (normalizeAuthKey(k) === registry) delete auths[k];
  auths[registry] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileAtomic(file, `${JSON.stringify({ ...doc, auths }, null, '\t')}\n`, 0o600);
}

/** logout: removes the registry's entry; false when the file had none. */
export function removeCredentials(file: string, registry: string): boolean {
  const doc = readAuthJson(file);
  if (!doc?.auths) return false;
  const auths = { ...doc.auths };
  const keys = Object.keys(auths).filter((k) => normalizeAuthKey(k) === registry);
  if (keys.length === 0) return false;
  for (const k of keys) delete auths[k];
  writeFileAtomic(file, `${JSON.stringify({ ...doc, auths }, null, '\t')}\n`, 0o600);
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// TLS

export interface TlsFiles {
  ca: string[];
  cert?: string;
  key?: string;
}

/** The certs.d directory of a registry: --cert-dir, else /etc/containers/certs.d/HOST, /etc/docker/certs.d/HOST. */
export function loadTls(registry: string, certDir?: string): TlsFiles {
  const dirs = certDir ? [certDir] : [join('/etc/containers/certs.d', registry), join('/etc/docker/certs.d', registry)];
  const out: TlsFiles = { ca: [] };
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue;
      throw wrapError(`read ${dir}`, err);
    }
    for (const n of names) {
      if (n.endsWith('.crt')) out.ca.push(readFileSync(join(dir, n), 'utf8'));
      else if (n.endsWith('.cert')) {
        const key = join(dir, n.replace(/\.cert$/, '.key'));
        if (!existsSync(key)) throw new PocError(`${join(dir, n)}: client certificate without its key ${key}`);
        out.cert = readFileSync(join(dir, n), 'utf8');
        out.key = readFileSync(key, 'utf8');
      }
    }
  }
  return out;
}
