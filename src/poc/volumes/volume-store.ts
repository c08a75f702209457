/**
 * The volume store, as docker's local driver lays it out, under the store's root (so it follows a rootless
 * store):
 *
 *   $POC_ROOT/volumes/<name>/volume.json   the record (docker volume inspect's fields)
 *   $POC_ROOT/volumes/<name>/_data/        what containers see at the mount point
 *
 * A volume is in use while any container (running or not) names it: it cannot be removed then, as with docker.
 * Creating, removing and the in-use check happen under the lock `volumes`; a container's record is written
 * before its volumes are made, so a concurrent `volume rm` either sees the container or ran entirely before.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PocError, wrapError } from '../errors.js';
import { runProgram } from '../spawn.js';
import { pocPaths, pocRoot, randomHex, readJson, readRecords, readdirOr, withLock, writeJsonAtomic, type RootOptions } from '../poc-root.js';
import { inPocUserns, inUserns, removeTree, rootless, usernsEnv } from '../userns.js';
import { listContainers, type ContainerRecord } from '../containers/container-store.js';
import { checkVolumeName, volumeType, type Volume } from './spec.js';

export interface VolumeRecord {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  /** ISO 8601. */
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string>;
  /** Made for one container (`-v /path`, an image's VOLUME); `rm -v` and `volume prune` remove these. */
  Anonymous: boolean;
}

const LOCK = 'volumes';

export function volumesDir(opts: RootOptions = {}): string {
  return join(pocRoot(opts), 'volumes');
}

/** Where a volume's content lives on the host (bound into containers). */
export function volumeDataPath(name: string, opts: RootOptions = {}): string {
  return join(volumesDir(opts), name, '_data');
}

/** A volume's record in its directory. */
const RECORD = 'volume.json';
const recordPath = (name: string, opts: RootOptions) => join(volumesDir(opts), name, RECORD);

/** A new anonymous volume's name: 64 hex digits, as docker's. */
export const anonymousVolumeName = () => randomHex(32);

export function listVolumes(opts: RootOptions = {}): VolumeRecord[] {
  return readRecords<VolumeRecord>(volumesDir(opts), RECORD).sort((a, b) => a.Name.localeCompare(b.Name));
}

export function getVolume(name: string, opts: RootOptions = {}): VolumeRecord {
  if (!existsSync(recordPath(name, opts))) throw new PocError(`no such volume: ${name}`);
  return readJson<VolumeRecord>(recordPath(name, opts));
}

/** The containers that name a volume, running or not. */
export function volumeUsers(name: string, opts: RootOptions = {}, containers: ContainerRecord[] = listContainers(opts)): ContainerRecord[] {
  return containers.filter((c) => c.options.volumes.some((v) => volumeType(v) === 'volume' && v.source === name));
}

/** Makes the volume unless it exists (then returns it, as `docker volume create` of a known name). Not locked. */
function ensureUnlocked(name: string, o: { anonymous: boolean; labels?: Record<string, string> }, opts: RootOptions): { record: VolumeRecord; made: boolean } {
  if (existsSync(recordPath(name, opts))) return { record: readJson<VolumeRecord>(recordPath(name, opts)), made: false };
  const dir = join(volumesDir(opts), name);
  const record: VolumeRecord = {
    Name: name,
    Driver: 'local',
    Mountpoint: join(dir, '_data'),
    CreatedAt: new Date().toISOString(),
    Labels: o.labels ?? {},
    Scope: 'local',
    Options: {},
    Anonymous: o.anonymous,
  };
  // Made beside, then renamed into place: a volume is either complete or absent.
  const staging = join(volumesDir(opts), `.tmp-${randomHex(6)}`);
  mkdirSync(join(staging, '_data'), { recursive: true, mode: 0o755 });
  chmodSync(staging, 0o701);
  try {
    writeJsonAtomic(join(staging, RECORD), record);
    renameSync(staging, dir);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  return { record, made: true };
}

export async function createVolume(name: string | undefined, o: { labels?: Record<string, string> } = {}, opts: RootOptions = {}): Promise<VolumeRecord> {
  const n = name === undefined ? anonymousVolumeName() : checkVolumeName(name, 'volume create');
  return withLock(LOCK, () => ensureUnlocked(n, { anonymous: name === undefined, ...o }, opts).record, opts);
}

async function removeUnlocked(name: string, opts: RootOptions, containers: ContainerRecord[]): Promise<void> {
  const users = volumeUsers(name, opts, containers);
  if (users.length > 0) {
    throw new PocError(`volume ${name} is in use by container ${users.map((c) => c.name).join(', ')}: remove the container first`);
  }
  // Renamed away first, so that no half-removed volume is ever seen under its name.
  const gone = join(volumesDir(opts), `.rm-${randomHex(6)}`);
  renameSync(join(volumesDir(opts), name), gone);
  await removeTree(gone, pocPaths(opts).run); // rootless: in the user namespace if it holds files of other ids
}

export async function removeVolume(name: string, opts: RootOptions = {}): Promise<void> {
  await withLock(
    LOCK,
    async () => {
      getVolume(name, opts);
      await removeUnlocked(name, opts, listContainers(opts));
    },
    opts,
  );
}

/** Unused volumes: anonymous ones, or with `all` named ones too (docker 23's `volume prune [-a]`). */
export async function pruneVolumes(all: boolean, opts: RootOptions = {}): Promise<string[]> {
  return withLock(
    LOCK,
    async () => {
      const containers = listContainers(opts);
      const removed: string[] = [];
      for (const v of listVolumes(opts)) {
        if (!all && !v.Anonymous) continue;
        if (volumeUsers(v.Name, opts, containers).length > 0) continue;
        await removeUnlocked(v.Name, opts, containers);
        removed.push(v.Name);
      }
      // Staging and removal leftovers of an interrupted poc.
      for (const n of readdirOr(volumesDir(opts))) if (n.startsWith('.tmp-') || n.startsWith('.rm-')) await removeTree(join(volumesDir(opts), n), pocPaths(opts).run);
      return removed;
    },
    opts,
  );
}


/**
 * The image's content at the mount point, copied into a new (empty) volume, as docker does on first use: the
 * files with their owners, modes and extended attributes, and the directory's own owner and mode.
 */
async function populate(data: string, imageRootfs: string, destination: string, opts: RootOptions): Promise<void> {
  const from = join(imageRootfs, destination);
  let st;
  try {
    st = lstatSync(from);
  } catch {
    return; // nothing there in the image
  }
  if (!st.isDirectory() || readdirOr(data).length > 0) return; // only a new, empty volume is filled
  // Rootless: the image's files are owned by the user's subordinate ids, and only root of poc's user namespace
  // can give the copies those owners (as the container sees them); there cp -a of "from/." also gives the
  // volume's directory the owner and mode of the image's.
  const viaUserns = rootless() && !inPocUserns();
  if (!viaUserns) {
    try {
      chownSync(data, st.uid, st.gid);
      chmodSync(data, st.mode & 0o7777);
    } catch (err) {
      throw wrapError(`give the volume ${data} the owner and mode of the image's ${destination}`, err);
    }
    if (readdirOr(from).length === 0) return;
  }
  const cp = ['cp', '-a', '--', `${from}/.`, `${data}/`];
  const r = viaUserns ? await runProgram(inUserns(cp, { mount: false }), usernsEnv(process.env, pocPaths(opts).run)) : await runProgram(cp);
  if (r.code !== 0) throw new PocError(`copy the image's ${destination} into its volume: ${r.stderr.trim() || `cp exit status ${r.code}`}`);
}

/**
 * A container's volumes at create: each named or anonymous volume made unless it exists, and a new one filled
 * from the image (unless nocopy). Returns the names it made, for the caller to remove if the create fails.
 */
export async function prepareContainerVolumes(containerId: string, volumes: Volume[], imageRootfs: string, opts: RootOptions = {}): Promise<string[]> {
  const made: string[] = [];
  try {
    await withLock(
      LOCK,
      async () => {
        for (const v of volumes) {
          if (volumeType(v) !== 'volume') continue;
          const r = ensureUnlocked(v.source, { anonymous: v.anonymous ?? false }, opts);
          if (r.made) made.push(v.source);
          if (!v.noCopy) await populate(r.record.Mountpoint, imageRootfs, v.destination, opts);
        }
      },
      opts,
    );
  } catch (err) {
    await releaseVolumes(made, opts, containerId);
    throw err;
  }
  return made;
}

/**
 * Removes those of `names` that no container uses any more (a failed create's, `rm -v`'s anonymous ones), not
 * counting the container `ignoring` (the one being removed); quiet for the rest.
 */
export async function releaseVolumes(names: string[], opts: RootOptions = {}, ignoring?: string): Promise<void> {
  if (names.length === 0) return;
  await withLock(
    LOCK,
    async () => {
      const containers = listContainers(opts).filter((c) => c.id !== ignoring);
      for (const n of names) {
        if (!existsSync(recordPath(n, opts)) || volumeUsers(n, opts, containers).length > 0) continue;
        await removeUnlocked(n, opts, containers);
      }
    },
    opts,
  );
}

/** A removed container's anonymous volumes (`rm -v`, `--rm`). */
export function anonymousVolumesOf(c: ContainerRecord): string[] {
  return c.options.volumes.filter((v) => volumeType(v) === 'volume' && v.anonymous).map((v) => v.source);
}
