/**
 * An image as the OCI image spec writes it (pure): the config JSON (whose sha256 is the image's digest, as the
 * image id is docker's), the manifest that lists the config and the layers. One definition for save, push and
 * the digest a build gives its image.
 */
import { createHash } from 'node:crypto';
import type { LayerRef } from './layers.js';
import type { HistoryEntry, ImageConfig } from './image-store.js';

export const MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

export interface OciImageParts {
  created: string;
  architecture: string;
  os: string;
  config: ImageConfig;
  layers: LayerRef[];
  history: HistoryEntry[];
}

/** The config document, keys in a fixed order so that the same image always has the same bytes. */
export function ociConfigJson(p: OciImageParts): string {
  const c = p.config;
  const config: Record<string, unknown> = {};
  if (c.User) config.User = c.User;
  if (c.ExposedPorts && Object.keys(c.ExposedPorts).length) config.ExposedPorts = c.ExposedPorts;
  if (c.Env?.length) config.Env = c.Env;
  if (c.Entrypoint) config.Entrypoint = c.Entrypoint;
  if (c.Cmd) config.Cmd = c.Cmd;
  if (c.Volumes && Object.keys(c.Volumes).length) config.Volumes = c.Volumes;
  if (c.WorkingDir && c.WorkingDir !== '/') config.WorkingDir = c.WorkingDir;
  if (c.Labels && Object.keys(c.Labels).length) config.Labels = c.Labels;
  if (c.StopSignal) config.StopSignal = c.StopSignal;
  if (c.Healthcheck) config.Healthcheck = c.Healthcheck;
  if (c.Shell) config.Shell = c.Shell;
  if (c.OnBuild?.length) config.OnBuild = c.OnBuild;
  return JSON.stringify({
    created: p.created,
    architecture: p.architecture,
    os: p.os,
    config,
    rootfs: { type: 'layers', diff_ids: p.layers.map((l) => l.diffID) },
    history: p.history,
  });
}

export function sha256(data: string | Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** The manifest of uncompressed layers (their digests are their diffIDs). */
export function ociManifestJson(config: Descriptor, layers: LayerRef[]): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config,
    layers: layers.map((l) => ({ mediaType: MEDIA_TYPES.layer, digest: l.diffID, size: l.size })),
  });
}
