/**
 * OCI images built offline for the engine tests: umoci makes an image layout from a directory tree, which is
 * archived for `ctr images import`. No registry, no network.
 */
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { must } from './engines.js';

export interface ImageOptions {
  /** Fills the image's root filesystem (an empty directory when called). */
  fill: (rootfs: string) => void;
  /** `umoci config` flags, e.g. ['--config.cmd', 'sh']. */
  config: string[];
}

/** Builds the image under `work` and returns the path of its OCI archive (tag "latest"). */
export function ociImageArchive(work: string, name: string, opts: ImageOptions): string {
  const layout = join(work, `${name}-oci`);
  const bundle = join(work, `${name}-umoci-bundle`);
  const rootfs = join(work, `${name}-rootfs`);
  must('umoci', ['init', '--layout', layout]);
  must('umoci', ['new', '--image', `${layout}:latest`]);
  must('umoci', ['unpack', '--image', `${layout}:latest`, bundle]);
  mkdirSync(rootfs, { recursive: true });
  opts.fill(rootfs);
  cpSync(rootfs, join(bundle, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  must('umoci', ['repack', '--image', `${layout}:latest`, bundle]);
  must('umoci', ['config', '--image', `${layout}:latest`, ...opts.config]);
  const archive = join(work, `${name}-oci.tar`);
  must('tar', ['-C', layout, '-cf', archive, '.']);
  for (const dir of [layout, bundle, rootfs]) rmSync(dir, { recursive: true, force: true });
  return archive;
}
