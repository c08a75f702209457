/**
 * `poc init`: the default image, Debian built with debootstrap (or mmdebstrap) from the mirror the host's apt
 * already uses, with the packages the benchmarks and network checks need. Pure parts: reading apt's sources
 * (one-line and deb822 formats), choosing the mirror, building the command, and turning debootstrap's
 * "I: Retrieving/Unpacking/Configuring <pkg>" lines into a package counter.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PocError, wrapError } from '../errors.js';
import { readTextOr, readdirOr, type RootOptions } from '../poc-root.js';
import { commitImage, createStaging, defaultImageConfig, findImageByName, type ImageRecord } from './image-store.js';

export const DEBIAN_IMAGE = 'debian';
export const DEBIAN_PACKAGES = ['sysbench', 'python3', 'iputils-ping', 'iproute2'];

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
  signedBy?: string;
}

/** One-line format: `deb [arch=amd64 signed-by=/k.gpg] http://deb.debian.org/debian bookworm main contrib`. */
export function parseSourcesList(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const options = Object.fromEntries(
      (m[2] ?? '')
        .split(/\s+/)
        .filter(Boolean)
        .map((o) => {
          const eq = o.indexOf('=');
          return eq === -1 ? [o, ''] : [o.slice(0, eq), o.slice(eq + 1)];
        }),
    );
    const src: AptSource = { types: [m[1]!], uris: [m[3]!], suites: [m[4]!], components: m[5]!.split(/\s+/).filter(Boolean) };
    if (options['signed-by']) src.signedBy = options['signed-by'];
    out.push(src);
  }
  return out;
}

/** deb822 format (`*.sources`): stanzas of `Field: value`, separated by blank lines; `Enabled: no` skips one. */
export function parseDeb822Sources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last) {
        fields[last] += `\n${raw.trim()}`;
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (m) {
        last = m[1]!.toLowerCase();
        fields[last] = m[2]!.trim();
      }
    }
    if (!fields.types || !fields.uris || !fields.suites) continue;
    if (/^(no|false|0)$/i.test(fields.enabled ?? '')) continue;
    const list = (v: string | undefined) => (v ?? '').split(/\s+/).filter(Boolean);
    const src: AptSource = { types: list(fields.types), uris: list(fields.uris), suites: list(fields.suites), components: list(fields.components) };
    // Signed-By may hold an inline key block instead of a path; only a path is useful to debootstrap.
    if (fields['signed-by'] && !fields['signed-by'].includes('\n')) src.signedBy = fields['signed-by'];
    out.push(src);
  }
  return out;
}

export interface DebianMirror {
  mirror: string;
  suite: string;
  components: string[];
  keyring?: string;
}

/**
 * The mirror for the base system: the first binary ("deb") source of a distribution suite, not an -updates,
 * -security or -backports one, preferring a URI that ends in /debian or /ubuntu (so a third-party repository
 * listed first, like nodesource's, is not taken for the distribution).
 */
export function pickMirror(sources: AptSource[]): DebianMirror {
  const candidates: Array<DebianMirror & { score: number }> = [];
  for (const s of sources) {
    if (!s.types.includes('deb')) continue;
    for (const uri of s.uris) {
      for (const suite of s.suites) {
        if (/-(updates|security|backports|proposed)$|\/updates$/.test(suite) || suite.endsWith('/')) continue;
        if (/security/.test(uri)) continue;
        const score = /\/(debian|ubuntu)\/?$/.test(uri) ? 0 : 1;
        candidates.push({ mirror: uri.replace(/\/+$/, ''), suite, components: s.components.length ? s.components : ['main'], ...(s.signedBy ? { keyring: s.signedBy } : {}), score });
      }
    }
  }
  candidates.sort((a, b) => a.score - b.score);
  const best = candidates[0];
  if (!best) throw new PocError('no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d (need a "deb" line for the release suite)');
  const { score: _score, ...mirror } = best;
  return mirror;
}

/** Reads the host's apt sources (system side). */
export function readHostAptSources(etcApt = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  out.push(...parseSourcesList(readTextOr(join(etcApt, 'sources.list'))));
  for (const n of readdirOr(join(etcApt, 'sources.list.d')).sort()) {
    const p = join(etcApt, 'sources.list.d', n);
    if (n.endsWith('.list')) out.push(...parseSourcesList(readTextOr(p)));
    else if (n.endsWith('.sources')) out.push(...parseDeb822Sources(readTextOr(p)));
  }
  return out;
}

export type BootstrapTool = 'debootstrap' | 'mmdebstrap';

export interface BootstrapCommandOptions {
  tool: BootstrapTool;
  target: string;
  mirror: DebianMirror;
  packages?: string[];
  arch?: string;
}

/** The command line (pure). Only components the suite has in the host's sources are asked for. */
export function bootstrapCommand(o: BootstrapCommandOptions): { cmd: string; args: string[] } {
  const packages = o.packages ?? DEBIAN_PACKAGES;
  const args = ['--variant=minbase', `--include=${packages.join(',')}`, `--components=${o.mirror.components.join(',')}`];
  if (o.arch) args.push(`--arch=${o.arch}`);
  if (o.mirror.keyring) args.push(`--keyring=${o.mirror.keyring}`);
  if (o.tool === 'mmdebstrap') args.push('--mode=root', '--verbose');
  args.push(o.mirror.suite, o.target, o.mirror.mirror);
  return { cmd: o.tool, args };
}

export interface DebianProgress {
  phase: 'resolve' | 'retrieve' | 'extract' | 'unpack' | 'configure' | 'finish';
  /** Packages done in this phase. */
  done: number;
  /** Known once the download is done: the number of packages retrieved. */
  total?: number;
  package?: string;
  message: string;
}

/** Turns debootstrap's output lines into progress events (stateful, but no I/O). */
export class BootstrapProgress {
  private seen: Record<string, Set<string>> = {};
  private total: number | undefined;

  line(text: string): DebianProgress | null {
    // "Retrieving <pkg> <version>" (index files have no version), "Unpacking <pkg>...", and so on.
    const t = text.trim();
    const m = /^I: (Retrieving|Validating) (\S+) \S+$/.exec(t) ?? /^I: (Extracting|Unpacking|Configuring) (\S+)\.\.\.$/.exec(t);
    if (!m) {
      const info = /^I: (.*)$/.exec(t);
      return info ? { phase: 'resolve', done: 0, message: info[1]! } : null;
    }
    const verb = m[1]!;
    if (verb === 'Validating') return null;
    const phase = ({ Retrieving: 'retrieve', Extracting: 'extract', Unpacking: 'unpack', Configuring: 'configure' } as const)[verb as 'Retrieving'];
    const pkg = m[2]!;
    const set = (this.seen[phase] ??= new Set());
    set.add(pkg);
    if (phase !== 'retrieve' && this.total === undefined) this.total = this.seen.retrieve?.size;
    const total = phase === 'retrieve' ? undefined : this.total;
    return {
      phase,
      done: set.size,
      ...(total !== undefined ? { total: Math.max(total, set.size) } : {}),
      package: pkg,
      message: `${verb} ${pkg}`,
    };
  }
}

function hasTool(tool: string): boolean {
  return ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].some((d) => existsSync(join(d, tool)));
}

export interface InitDebianOptions extends RootOptions {
  /** Rebuild even if the image exists. */
  force?: boolean;
  name?: string;
  onProgress?: (p: DebianProgress) => void;
  /** Default: from the host's apt sources. */
  mirror?: DebianMirror;
  packages?: string[];
}

/** `poc init`: builds (or reuses) the Debian image. Needs root and debootstrap or mmdebstrap. */
export async function initDebianImage(opts: InitDebianOptions = {}): Promise<ImageRecord> {
  const name = opts.name ?? DEBIAN_IMAGE;
  const existing = findImageByName(name, opts);
  if (existing && !opts.force) return existing;
  if (process.getuid?.() !== 0) throw new PocError('poc init needs root (debootstrap creates device nodes and runs chroot)');
  const tool: BootstrapTool | undefined = hasTool('debootstrap') ? 'debootstrap' : hasTool('mmdebstrap') ? 'mmdebstrap' : undefined;
  if (!tool) throw new PocError('neither debootstrap nor mmdebstrap is installed: apt-get install debootstrap');
  const mirror = opts.mirror ?? pickMirror(readHostAptSources());
  let arch: string | undefined;
  try {
    arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  } catch {
    arch = undefined;
  }
  const staging = createStaging(opts);
  try {
    const { cmd, args } = bootstrapCommand({ tool, target: staging.rootfs, mirror, ...(opts.packages ? { packages: opts.packages } : {}), ...(arch ? { arch } : {}) });
    await runWithProgress(cmd, args, opts.onProgress);
    // The downloaded .debs and package lists are not part of the image.
    for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      for (const f of readdirOr(join(staging.rootfs, d))) {
        if (f !== 'partial' && f !== 'lock') rmSync(join(staging.rootfs, d, f), { recursive: true, force: true });
      }
    }
    opts.onProgress?.({ phase: 'finish', done: 0, message: 'committing image' });
    return await commitImage(staging, {
      ...opts,
      name,
      replace: opts.force,
      source: { kind: 'debian', path: `${mirror.mirror} ${mirror.suite}` },
      config: defaultImageConfig({ Cmd: ['bash'] }),
    });
  } catch (err) {
    staging.discard();
    throw wrapError(`build ${name} image`, err);
  }
}

async function runWithProgress(cmd: string, args: string[], onProgress?: (p: DebianProgress) => void): Promise<void> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  const progress = new BootstrapProgress();
  const tail: string[] = [];
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    const p = progress.line(line);
    if (p) onProgress?.(p);
  };
  createInterface({ input: child.stdout }).on('line', onLine);
  createInterface({ input: child.stderr }).on('line', onLine);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) => reject(wrapError(cmd, err)));
    child.on('close', resolve);
  });
  if (code !== 0) throw new PocError(`${cmd} failed (exit ${code}):\n${tail.join('\n')}`);
}
