/** The image names an archive holds, so that `poc load` brings in each (import.ts does one at a time). */
import { imageNameFromReference, openDecompressed } from './import.js';
import { readTar } from './tar.js';

/** Reads manifest.json (docker) or index.json (OCI) out of the archive without unpacking it. */
export async function readArchiveNames(path: string): Promise<string[]> {
  let manifest: unknown;
  let index: unknown;
  for await (const e of readTar(openDecompressed(path))) {
    const name = e.name.replace(/^\.\//, '');
    if (name !== 'manifest.json' && name !== 'index.json') continue;
    const chunks: Buffer[] = [];
    for await (const c of e.body()) chunks.push(c);
    try {
      const doc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      if (name === 'manifest.json') manifest = doc;
      else index = doc;
    } catch {
      // import reports a damaged document
    }
  }
  const names: string[] = [];
  if (Array.isArray(manifest)) {
    for (const m of manifest as Array<{ RepoTags?: unknown }>) {
      const tag = Array.isArray(m.RepoTags) && typeof m.RepoTags[0] === 'string' ? imageNameFromReference(m.RepoTags[0]) : null;
      if (tag) names.push(tag);
    }
  } else if (index && typeof index === 'object') {
    for (const d of ((index as { manifests?: Array<{ annotations?: Record<string, string> }> }).manifests ?? [])) {
      const ref = d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name'];
      const n = imageNameFromReference(ref);
      if (n) names.push(n);
    }
  }
  return names;
}
