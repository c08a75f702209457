/**
 * poc's on-disk layout under POC_ROOT (default /var/lib/poc; for an ordinary user ~/.local/share/poc, see
 * rootless.ts), ids, names, and the file lock that serialises writers of one piece of state (the image list, the
 * network allocations, one container).
 *
 *   $POC_ROOT/images/<id>/{rootfs/,image.json}   one directory per image (src/poc/images/)
 *   $POC_ROOT/images/.tmp-<rand>/               an image being built or imported; removed on failure
 *   $POC_ROOT/containers/<id>/                  one directory per container
 *   $POC_ROOT/network/state.json                bridge, subnet, address allocations, published ports
 *   $POC_ROOT/locks/<name>.lock                 lock files (pid and start time of the holder)
 *   <run>/runtime/, <run>/sock/                 pocrun's --root, sockets; <run> is POC_ROOT for root,
 *                                               $XDG_RUNTIME_DIR/poc for a user (rootless.ts)
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PocError, errnoCode, wrapError } from './errors.js';
import { ROOT_STORE, defaultStoreRoot, runDirFor } from './rootless.js';
import { lockFileHolder, takeOverStale, tryLockFile } from '../common/lock-file.js';

export const DEFAULT_POC_ROOT = ROOT_STORE;

const euid = (): number => process.geteuid?.() ?? 0;

/** Every public function takes `{ root }`; without it, POC_ROOT from the environment, then the default store. */
export interface RootOptions {
  root?: string;
}

export function pocRoot(opts: RootOptions = {}): string {
  return opts.root ?? (process.env.POC_ROOT || defaultStoreRoot(process.env, euid()));
}

export interface PocPaths {
  root: string;
  images: string;
  containers: string;
  network: string;
  locks: string;
  /** The runtime directory: pocrun's state (runtime/) and sockets (sock/). */
  run: string;
}

export function pocPaths(opts: RootOptions = {}): PocPaths {
  const root = pocRoot(opts);
  return {
    root,
    images: join(root, 'images'),
    containers: join(root, 'containers'),
    network: join(root, 'network'),
    locks: join(root, 'locks'),
    run: runDirFor(root, process.env, euid()),
  };
}

// ---------------------------------------------------------------------------------------------------------
// ids and names

/** `bytes` random bytes in hex, from Web Crypto: node:crypto takes milliseconds to load in the Bun binary. */
export function randomHex(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString('hex');
}

/** A new 64-hex-digit id, as docker's; the first 12 digits are the short id shown to users. */
export function newId(): string {
  return randomHex(32);
}

export function shortId(id: string): string {
  return id.slice(0, 12);
}

const ID_RE = /^[0-9a-f]{64}$/;
export function isId(s: string): boolean {
  return ID_RE.test(s);
}

/** Container names, as docker's: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters. */
const CONTAINER_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
/**
 * Image names, as docker's reference grammar: an optional registry host (with a port) where the image was pulled
 * from, lower-case path components, an optional tag, and for an image pulled by digest the digest:
 * `debian`, `library/debian:bookworm`, `127.0.0.1:5000/team/app:v1`, `registry.example/app@sha256:<64 hex>`.
 */
const IMAGE_NAME_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

export type NameKind = 'container' | 'image';

/** Checked before a name is stored or a path is built from it; the error names the bad input. */
export function checkName(kind: NameKind, name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new PocError(`${kind} name cannot be empty`);
  if (name.length > 255) throw new PocError(`${kind} name is too long (${name.length} characters, at most 255)`);
  const re = kind === 'container' ? CONTAINER_NAME_RE : IMAGE_NAME_RE;
  if (!re.test(name)) {
    const rule =
      kind === 'container'
        ? 'use letters, digits and _.- (not first)'
        : 'use lower-case letters, digits, separators ._- and /, and an optional :tag';
    throw new PocError(`invalid ${kind} name ${JSON.stringify(name)}: ${rule}`);
  }
  return name;
}

/**
 * Resolves what a user typed (a name, a full id or a unique id prefix) against records, as docker does:
 * an exact name wins, then an exact id, then a unique id prefix. Unknown or ambiguous input is an error
 * that names it.
 */
export function resolveRef<T extends { id: string; name?: string | null }>(kind: NameKind, records: T[], ref: string): T {
  const byName = records.find((r) => r.name === ref);
  if (byName) return byName;
  const byId = records.find((r) => r.id === ref);
  if (byId) return byId;
  if (/^[0-9a-f]{1,64}$/.test(ref)) {
    const matches = records.filter((r) => r.id.startsWith(ref));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new PocError(`${kind} id prefix ${JSON.stringify(ref)} is ambiguous: it matches ${matches.length} ${kind}s`);
    }
  }
  throw new PocError(`no such ${kind}: ${ref}`);
}

// ---------------------------------------------------------------------------------------------------------
// files

/** Writes a file so that readers see the old or the new content, never a part: tmp + fsync + rename. */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}-${randomHex(4)}`;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw wrapError(`write ${path}`, err);
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Reads a JSON file; a missing file gives `fallback` (or an error when there is none). */
export function readJson<T>(path: string, fallback?: T): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' && fallback !== undefined) return fallback;
    throw wrapError(`read ${path}`, err);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new PocError(`${path} is not valid JSON (${(err as Error).message}); it may have been damaged`);
  }
}

/** A file's text, or `fallback` when it cannot be read (a file of an image or the host that may be missing). */
export function readTextOr(path: string, fallback = ''): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** A directory's entries, or none when it cannot be read. */
export function readdirOr(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * The records of a store (images, containers, volumes): `<dir>/<entry>/<file>` for each entry of `dir` (none while
 * it does not exist), in no order. An entry whose name starts with a dot (one being made or removed: `.tmp-`,
 * `.rm-`) is not a record, nor is one whose file cannot be read yet or any more.
 */
export function readRecords<T>(dir: string, file: string): T[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const out: T[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue;
    try {
      out.push(readJson<T>(join(dir, name, file)));
    } catch {
      // being made or removed
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// locking

export interface LockOptions extends RootOptions {
  /** How long to wait for another holder, in ms (default 30 s). */
  timeoutMs?: number;
}

/**
 * Runs `fn` holding the lock `<root>/locks/<name>.lock`. Node has no flock, so the lock is a file created with
 * O_EXCL that holds the holder's pid and process start time; a lock whose holder is gone (or whose pid was
 * reused: the start time differs) is stale and taken over. Waiters poll with a growing delay.
 */
export async function withLock<T>(name: string, fn: () => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
  const path = join(pocPaths(opts).locks, `${name}.lock`);
  await acquireLock(path, opts.timeoutMs ?? 30_000);
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(path);
    } catch {
      // removed by someone who judged it stale; nothing to do
    }
  }
}

async function acquireLock(path: string, timeoutMs: number): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    try {
      if (tryLockFile(path)) return;
    } catch (err) {
      throw wrapError(`lock ${path}`, err);
    }
    const holder = lockFileHolder(path);
    if (takeOverStale(path, holder)) continue; // released, or its holder is gone: try again at once
    if (Date.now() > deadline) {
      const pid = holder.split(' ')[0] || 'unknown';
      throw new PocError(`timed out waiting for lock ${path} (held by pid ${pid}); remove it if that process is gone`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}

/** Whether a process exists (EPERM: it does, and is someone else's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}
