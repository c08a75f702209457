/**
 * `poc prune`: removes what poc made and nothing else: stopped containers, untagged images no container uses,
 * and, once no container is left, poc's bridge, its nftables table and its empty cgroup parent.
 */
import { readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { stdout } from '../../common/output.js';
import { pruneImages } from '../images/index.js';
import { destroyNetwork, readNetworkState, run } from '../network/index.js';
import { containerStatus, listContainers } from '../containers/container-store.js';
import { removeContainer } from '../containers/stop.js';
import { shortId, type RootOptions } from '../poc-root.js';
import { isRootless } from '../rootless.js';
import { imagesInUse } from './images.js';

/** The empty /poc cgroup in each hierarchy (rmdir refuses a cgroup that still has children). */
function removeCgroupParent(): void {
  const base = '/sys/fs/cgroup';
  const dirs = [join(base, 'poc')];
  try {
    for (const c of readdirSync(base)) dirs.push(join(base, c, 'poc'));
  } catch {
    return;
  }
  for (const d of dirs) {
    try {
      rmdirSync(d);
    } catch {
      // missing, or in use
    }
  }
}

export async function pruneCommand(o: RootOptions): Promise<number> {
  for (const c of listContainers(o)) {
    const s = containerStatus(c.id, o);
    if (s.status === 'running' || s.monitorAlive) continue;
    await removeContainer(c, o);
    stdout(`Deleted container: ${shortId(c.id)} (${c.name})\n`);
  }
  for (const id of await pruneImages({ ...o, inUse: imagesInUse(o) })) stdout(`Deleted image: ${shortId(id)}\n`);
  // Then the layers no image and no build-cache entry refers to any more (poc builder prune forgets the cache).
  await (await import('./container-files.js')).pruneUnusedLayers(o);
  // Rootless poc has no bridge, nftables table or cgroup parent: those are root's.
  if (listContainers(o).length === 0 && !isRootless(process.env, process.geteuid?.() ?? 0)) {
    // The bridge and the nftables table are the host's, shared by every POC_ROOT: kept while anything is
    // still plugged into the bridge (a container of another root).
    const bridge = readNetworkState(o).bridge;
    const ports = await run('ip', ['-o', 'link', 'show', 'master', bridge]).catch(() => '');
    if (ports.trim() === '') await destroyNetwork(o);
    else stdout(`Kept network ${bridge}: other containers are attached to it\n`);
    removeCgroupParent();
  }
  return 0;
}
