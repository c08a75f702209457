import { realpathSync, readFileSync } from 'node:fs';
import { PocrunError } from '../errors.js';

/**
 * The mounts of a container that has no mount namespace of its own: they are made in the runtime's namespace,
 * under the rootfs, where they would outlive the container (runc leaves them). create records the mount points
 * that were under the rootfs before; delete unmounts every other one.
 */
export interface SharedMounts {
  /** The rootfs's real path, as /proc/self/mountinfo names it. */
  root: string;
  /** Mount points under it before create (an engine's own), left alone. */
  before: string[];
}

export function sharedMountsBefore(rootfs: string): SharedMounts {
  const root = realpathSync(rootfs);
  return { root, before: mountPointsUnder(root) };
}

/** Mount points strictly under `root` in this mount namespace, in mountinfo's order (parents first). */
export function mountPointsUnder(root: string): string[] {
  const prefix = root === '/' ? '/' : `${root}/`;
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => unescapeMountPath(line.split(' ')[4] ?? ''))
    .filter((m) => m.startsWith(prefix) && m !== root);
}

/** mountinfo writes space, tab, newline and backslash as \040, \011, \012, \134. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Unmounts (lazily, deepest first) what the container mounted under its rootfs. */
export function unmountShared(mounts: SharedMounts): void {
  const before = new Set(mounts.before);
  const mine = mountPointsUnder(mounts.root).filter((m) => !before.has(m)).reverse();
  if (!mine.length) return;
  // Loaded only here: node:child_process costs every pocrun process ~0.2 MB, and this case is rare.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const failed: string[] = [];
  for (const m of mine) {
    const r = spawnSync('umount', ['-l', m], { encoding: 'utf8' });
    // A mount under one just unmounted (lazily) goes with it.
    if (r.status !== 0 && mountPointsUnder(mounts.root).includes(m)) failed.push(`${m}: ${r.stderr.trim()}`);
  }
  if (failed.length) throw new PocrunError(`unmount the container's mounts: ${failed.join('; ')}`);
}
