/**
 * Subordinate ids: the ranges of uids and gids an ordinary user may map into a user namespace, from /etc/subuid and
 * /etc/subgid (`name-or-uid:start:count` per line, shadow-utils' subuid(5)), which newuidmap and newgidmap
 * (Debian's uidmap package) enforce. Pure parsing and mapping here; the one read of the files is at the bottom.
 * Shared by pocrun (its user namespaces) and poc (its image store and containers), so that both read the files
 * the same way.
 */
import { readFileSync } from 'node:fs';
import { UserError, errnoCode } from './errors.js';

export interface SubidRange {
  /** The first host id of the range. */
  start: number;
  count: number;
}

/** The user a lookup is for: a line matches its name or its numeric uid (or gid), as shadow-utils matches. */
export interface SubidOwner {
  name?: string;
  id: number;
}

const MAX_ID = 0xffffffff;

/**
 * The ranges of `owner` in the text of /etc/subuid or /etc/subgid, in file order. Comments, blank lines and
 * malformed lines are skipped, as shadow-utils skips them; so are ranges of 0 ids or that run past 2^32-1.
 */
export function parseSubids(text: string, owner: SubidOwner): SubidRange[] {
  const out: SubidRange[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length !== 3 || !/^\d+$/.test(f[1]!) || !/^\d+$/.test(f[2]!)) continue;
    const who = f[0]!;
    if (who !== owner.name && who !== String(owner.id)) continue;
    const start = Number(f[1]);
    const count = Number(f[2]);
    if (count === 0 || start + count - 1 > MAX_ID) continue;
    out.push({ start, count });
  }
  return out;
}

/** One line of a uid_map or gid_map: `count` ids from `hostID` appear as `containerID` onwards. */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/**
 * The mapping rootless podman makes: root is the user's own id, and ids 1, 2, ... are the subordinate ranges one
 * after the other. A user without ranges gets the single-id mapping (only root exists inside).
 */
export function rootlessMappings(ownId: number, ranges: SubidRange[]): IdMapping[] {
  const maps: IdMapping[] = [{ containerID: 0, hostID: ownId, size: 1 }];
  let next = 1;
  for (const r of ranges) {
    if (next + r.count - 1 > MAX_ID - 1) break;
    maps.push({ containerID: next, hostID: r.start, size: r.count });
    next += r.count;
  }
  return maps;
}

/** The highest container id a mapping covers (0 for the single-id mapping). */
export function highestMappedId(maps: IdMapping[]): number {
  return Math.max(...maps.map((m) => m.containerID + m.size - 1));
}

/** Where a container id lands on the host under `maps`, or undefined when it is not mapped. */
export function hostIdOf(maps: IdMapping[], containerId: number): number | undefined {
  const m = maps.find((x) => containerId >= x.containerID && containerId < x.containerID + x.size);
  return m ? m.hostID + (containerId - m.containerID) : undefined;
}

export const SUBUID_FILE = '/etc/subuid';
export const SUBGID_FILE = '/etc/subgid';

/** Reads the ranges of `owner` from a subid file; a missing file means none. */
export function readSubids(path: string, owner: SubidOwner): SubidRange[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw new UserError(`read ${path}: ${(err as Error).message}`);
  }
  return parseSubids(text, owner);
}
