/**
 * Paths inside an image's (or a container's) root seen from the host: the image's symbolic links are the image's,
 * so `/etc/passwd -> /etc/shadow` or `-> ../../../../etc/passwd` must name the image's file, never the host's.
 * This is what openat2's RESOLVE_IN_ROOT does in the kernel and securejoin / moby's FollowSymlinkInScope do in
 * Go (docker resolves `--user NAME` with the latter); Node has no openat2, so the walk is done here.
 */
import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { PocError } from './errors.js';

/** Linux's limit on the links one lookup follows (MAXSYMLINKS), past which it gives ELOOP. */
const MAX_LINKS = 40;

/**
 * The host path of `p` (absolute inside `root`) with its symbolic links resolved within `root`, as if `root` were
 * `/`: an absolute link starts again at `root`, `..` stops at `root`. The part that does not exist yet is appended
 * as it is, its `..` clamped at `root` too (the caller may create it).
 */
export function resolveInRoot(root: string, p: string): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  let current: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      current.pop();
      continue;
    }
    const candidate = join(root, ...current, part);
    let st;
    try {
      st = lstatSync(candidate);
    } catch {
      // Missing from here on: no links left to follow, but the rest is still taken lexically within the root
      // (`missing/../../../etc/passwd` must not climb out).
      current.push(part);
      for (const rest of parts) {
        if (rest === '..') current.pop();
        else current.push(rest);
      }
      break;
    }
    if (st.isSymbolicLink()) {
      if (++links > MAX_LINKS) throw new PocError(`too many levels of symbolic links in ${p}`);
      const target = readlinkSync(candidate);
      if (target.startsWith('/')) current = [];
      parts.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    current.push(part);
  }
  return join(root, ...current);
}

/**
 * Whether `p` exists inside `root`, its links resolved within it: a link out of the root names the root's own
 * file, never the host's. A link loop is absent, as the kernel's stat finds nothing there (ELOOP).
 */
export function existsInRoot(root: string, p: string): boolean {
  let path;
  try {
    path = resolveInRoot(root, p);
  } catch {
    return false;
  }
  return existsSync(path);
}

/**
 * The text of the regular file at `p` inside `root` (resolved as resolveInRoot does), or '' when there is none
 * there. The last component is opened without following a link and without blocking, and anything but a regular
 * file (a FIFO, /dev/zero) reads as absent. The walk and the open are two steps, and a running container can
 * change its files in between (docker cp's CVE-2018-15664): a directory swapped for a link would be followed by
 * the open, so what was opened is checked to be inside the root, by the name the kernel gives the descriptor.
 */
export function readTextInRoot(root: string, p: string): string {
  return readWalked(root, resolveInRoot(root, p), p); // a link loop is an error, as the kernel's ELOOP
}

/** readTextInRoot's second step: `path` is what the walk found for `p`, which may have changed since. */
export function readWalked(root: string, path: string, p: string): string {
  let fd;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return '';
  }
  try {
    if (!isWithin(realpathSync(root), readlinkSync(`/proc/self/fd/${fd}`))) {
      throw new PocError(`${p}: it was changed into a link out of the root ${root} while it was being read`);
    }
    return fstatSync(fd).isFile() ? readFileSync(fd, 'utf8') : '';
  } catch (err) {
    if (err instanceof PocError) throw err;
    return '';
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether the host path `path` is `root` or below it. Both are the kernel's names: a root reached through
 * /proc/PID/root (a container's mount in its monitor's mount namespace) is named as that namespace names it,
 * which is the path below /proc/PID/root, as the descriptor's is.
 */
function isWithin(root: string, path: string): boolean {
  return path === root || path.startsWith(root === '/' ? '/' : `${root}/`);
}

/** The image's /etc/passwd and /etc/group (either '' when missing), which `--user`, USER and `--group-add` name. */
export function idFilesIn(root: string): { passwd: string; group: string } {
  return { passwd: readTextInRoot(root, '/etc/passwd'), group: readTextInRoot(root, '/etc/group') };
}
