/**
 * Files a container is given whole at create, each mounted read-only at its path (poc compose's secrets and
 * configs whose value is not a host file: an environment variable, inline content, or a file given its own
 * owner and mode). docker compose copies such files into the container's layer; poc writes them in the
 * container's directory and binds each one read-only, so the value is never in the container's record (only
 * its path) and goes when the container is removed.
 */
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PocError } from '../errors.js';
import type { Volume } from '../volumes/spec.js';

export interface ContainerFile {
  /** Absolute, in the container. */
  target: string;
  content: Buffer;
  uid: number;
  gid: number;
  mode: number;
}

/** Where a container's files live in its directory. */
export const filesDir = (containerDir: string) => join(containerDir, 'files');

/** The read-only binds of a container's files (the paths they will have once written). */
export function fileMounts(containerDir: string, files: readonly ContainerFile[]): Volume[] {
  return files.map((f, i) => ({ type: 'bind', source: join(filesDir(containerDir), String(i)), destination: f.target, readOnly: true }));
}

/**
 * Writes the files, with their owner and mode. A rootless poc cannot give a file an owner other than its own
 * user (the container's root): that is refused rather than left out.
 */
export function writeContainerFiles(containerDir: string, files: readonly ContainerFile[], rootless: boolean): void {
  if (files.length === 0) return;
  const dir = filesDir(containerDir);
  mkdirSync(dir, { mode: 0o711 });
  files.forEach((f, i) => {
    if (rootless && (f.uid !== 0 || f.gid !== 0)) throw new PocError(`${f.target}: a rootless poc cannot give a file the owner ${f.uid}:${f.gid} (only 0:0, its own user)`);
    const path = join(dir, String(i));
    writeFileSync(path, f.content, { mode: 0o600 });
    if (!rootless) chownSync(path, f.uid, f.gid);
    chmodSync(path, f.mode); // after chown, which clears the set-id bits
  });
}
