/**
 * Applies one layer (a tar stream) onto a rootfs directory, safely: no entry can create, change or delete
 * anything outside the rootfs.
 *
 * - Entry names are checked first (`entryPath`): absolute names and `..` components are refused.
 * - Every parent directory is looked at with lstat, never followed: a parent that is a symbolic link is refused
 *   (an archive that makes `a -> /etc` and then writes `a/passwd`). Layer tars record real paths, so honest
 *   archives never write through a symlink.
 * - The final component is removed before it is created, and files are opened with O_EXCL | O_NOFOLLOW, so a
 *   symlink left at that name by an earlier entry is replaced, not followed.
 * - Hard links must point at an existing non-directory inside the rootfs, reached the same way.
 * - Whiteouts (OCI image spec, "layer.md"): `.wh.NAME` deletes NAME from the layers below, `.wh..wh..opq`
 *   empties its directory of what the layers below put there.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  linkSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { USERNS_ENV, unmappedOwnerMessage } from '../rootless.js';
import { UserError, PocError, errnoCode, wrapError } from '../errors.js';
import { readTar } from './tar.js';
import { setXattrs } from './xattr.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * Checks an entry name and returns its components relative to the rootfs ([] for the rootfs itself).
 * Leading "./" is accepted (most archives have it); "/" at the start and ".." anywhere are refused.
 */
export function entryPath(name: string): string[] {
  if (name.startsWith('/')) throw new PocError(`tar entry ${JSON.stringify(name)}: absolute path refused`);
  if (name.includes('\0')) throw new PocError(`tar entry ${JSON.stringify(name)}: NUL byte in name`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new PocError(`tar entry ${JSON.stringify(name)}: ".." in path refused`);
  return parts;
}

export interface LayerStats {
  entries: number;
  /** Bytes of regular file data written. */
  bytes: number;
  /** Device nodes not created because we are not root. */
  skippedDevices: number;
  /** Extended attributes this filesystem or process cannot hold, as "entry: name (ERRNO)". */
  skippedXattrs: string[];
}

export interface ApplyLayerOptions {
  /** Set owners from the archive (lchown); default: when running as root. */
  chown?: boolean;
  /**
   * Make device nodes; default: as root, but not in a user namespace, where the kernel refuses mknod of a device
   * (they are skipped and counted, as containers/storage skips them rootless).
   */
  devices?: boolean;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
}

/** Removes whatever is at path (recursively if a directory); never follows a symlink. */
function removeAt(path: string, st: Stats | null): void {
  if (!st) return;
  if (st.isDirectory()) rmSync(path, { recursive: true, force: true });
  else unlinkSync(path);
}

export async function applyLayer(
  rootfs: string,
  source: AsyncIterable<Buffer>,
  opts: ApplyLayerOptions = {},
): Promise<LayerStats> {
  const chown = opts.chown ?? process.getuid?.() === 0;
  const devices = opts.devices ?? (chown && process.env[USERNS_ENV] !== '1');
  const stats: LayerStats = { entries: 0, bytes: 0, skippedDevices: 0, skippedXattrs: [] };
  /** Paths this layer created (and their parents): an opaque marker must not delete them. */
  const touched = new Set<string>();
  /** Directory mtimes are set last, since creating children changes them. */
  const dirTimes: Array<[string, number]> = [];

  /** Walks the parents of `parts`, refusing symlinks; creates missing ones when `create`. Null: a parent is missing. */
  const parentDir = (name: string, parts: string[], create: boolean): string | null => {
    let dir = rootfs;
    for (let i = 0; i < parts.length - 1; i++) {
      dir = join(dir, parts[i]!);
      const st = lstatOrNull(dir);
      if (st === null) {
        if (!create) return null;
        mkdirSync(dir, { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw new PocError(
          `tar entry ${JSON.stringify(name)}: parent ${JSON.stringify(parts.slice(0, i + 1).join('/'))} is a symbolic link; refusing to write through it`,
        );
      } else if (!st.isDirectory()) {
        throw new PocError(`tar entry ${JSON.stringify(name)}: parent ${JSON.stringify(parts.slice(0, i + 1).join('/'))} is not a directory`);
      }
      if (create) touched.add(parts.slice(0, i + 1).join('/'));
    }
    return dir;
  };

  for await (const entry of readTar(source)) {
    stats.entries++;
    const parts = entryPath(entry.name);
    if (parts.length === 0) continue; // "./": the rootfs itself keeps its own mode
    const base = parts[parts.length - 1]!;
    const rel = parts.join('/');

    if (base.startsWith(WHITEOUT)) {
      const dir = parentDir(entry.name, parts, false);
      if (dir === null) continue;
      if (base === OPAQUE) {
        const dirRel = parts.slice(0, -1).join('/');
        for (const child of readdirSync(dir)) {
          const childRel = dirRel === '' ? child : `${dirRel}/${child}`;
          if (!touched.has(childRel)) removeAt(join(dir, child), lstatOrNull(join(dir, child)));
        }
      } else {
        const target = base.slice(WHITEOUT.length);
        if (target === '' || target === '.' || target === '..') {
          throw new PocError(`tar entry ${JSON.stringify(entry.name)}: invalid whiteout`);
        }
        removeAt(join(dir, target), lstatOrNull(join(dir, target)));
      }
      continue;
    }

    const dir = parentDir(entry.name, parts, true)!;
    const path = join(dir, base);
    const existing = lstatOrNull(path);
    touched.add(rel);
    try {
      switch (entry.type) {
        case 'dir':
          if (!existing?.isDirectory()) {
            removeAt(path, existing);
            mkdirSync(path, { mode: 0o700 });
          }
          break;
        case 'file': {
          removeAt(path, existing);
          const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
          try {
            for await (const chunk of entry.body()) {
              let off = 0;
              while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
              stats.bytes += chunk.length;
            }
          } finally {
            closeSync(fd);
          }
          break;
        }
        case 'symlink':
          removeAt(path, existing);
          symlinkSync(entry.linkname, path);
          break;
        case 'hardlink': {
          const targetParts = entryPath(entry.linkname);
          const targetDir = targetParts.length === 0 ? null : parentDir(entry.linkname, targetParts, false);
          const target = targetDir === null ? null : join(targetDir, targetParts[targetParts.length - 1]!);
          const tst = target === null ? null : lstatOrNull(target);
          if (target === null || tst === null) {
            throw new PocError(`hard link to ${JSON.stringify(entry.linkname)}, which is not in the archive`);
          }
          if (tst.isDirectory()) throw new PocError(`hard link to directory ${JSON.stringify(entry.linkname)}`);
          if (target === path) break;
          removeAt(path, existing);
          linkSync(target, path);
          continue; // a hard link shares its target's owner, mode and times
        }
        case 'char':
        case 'block':
        case 'fifo': {
          removeAt(path, existing);
          if (entry.type !== 'fifo' && !devices) {
            stats.skippedDevices++;
            continue;
          }
          const kind = entry.type === 'char' ? 'c' : entry.type === 'block' ? 'b' : 'p';
          const args = kind === 'p' ? [path, 'p'] : [path, kind, String(entry.devmajor), String(entry.devminor)];
          execFileSync('mknod', args, { stdio: ['ignore', 'ignore', 'pipe'] });
          break;
        }
      }
      if (chown) {
        try {
          lchownSync(path, entry.uid, entry.gid);
        } catch (err) {
          // In poc's user namespace (rootless) an id beyond the user's subordinate range cannot be given.
          if (errnoCode(err) === 'EINVAL' && process.env[USERNS_ENV] === '1') {
            const map = (f: string) => readFileSync(`/proc/self/${f}`, 'utf8');
            throw new PocError(unmappedOwnerMessage(entry.uid, entry.gid, map('uid_map'), map('gid_map')));
          }
          throw err;
        }
      }
      // After chown, which clears set-uid bits. Symlinks have no mode of their own on Linux.
      if (entry.type !== 'symlink') chmodSync(path, entry.mode);
      // After chown too, which clears security.capability.
      if (entry.xattrs) for (const skipped of await setXattrs(path, entry.xattrs)) stats.skippedXattrs.push(`${rel}: ${skipped}`);
      if (entry.type === 'dir') dirTimes.push([path, entry.mtime]);
      else if (entry.type === 'symlink') lutimesSync(path, entry.mtime, entry.mtime);
      else utimesSync(path, entry.mtime, entry.mtime);
    } catch (err) {
      if (err instanceof UserError && err.message.startsWith('tar entry ')) throw err;
      if (err instanceof UserError && err.message.startsWith('truncated tar archive')) throw err;
      throw wrapError(`tar entry ${JSON.stringify(entry.name)}`, err);
    }
  }
  for (const [path, mtime] of dirTimes.reverse()) {
    try {
      utimesSync(path, mtime, mtime);
    } catch {
      // removed by a later entry of this layer
    }
  }
  return stats;
}
