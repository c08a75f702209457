import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Hook } from '../spec/generated/config.js';
import { PocrunError, errnoCode, wrapError } from '../errors.js';
import { checkId } from './id.js';
import { sleepMs } from '../common/proc.js';
import type { SharedMounts } from './shared-mounts.js';
import { FRONT_RECORD_FIELDS, STATE_FILES, type Status } from '../vocabulary/state-record.js';
import { lockFileHolder, takeOverStale, tryLockFile } from '../common/lock-file.js';

export const DEFAULT_ROOT = '/run/pocrun';

/** state.json: the OCI state plus what later commands need to act on the container. */
export interface ContainerRecord {
  ociVersion: string;
  id: string;
  pid: number;
  bundle: string;
  annotations?: Record<string, string>;
  /** Start time of the init process, from /proc/<pid>/stat: tells a reused pid. */
  initStartTime: string;
  created: string;
  rootfs: string;
  cgroupPath: string;
  /**
   * The cgroup's directory per controller ("unified" for v2), as runc records cgroup_paths: the native front
   * (src/native/front/) reads state, start and delete from this record without discovering mounts.
   */
  cgroupDirs: Record<string, string>;
  /**
   * Set when --systemd-cgroup made the cgroup a systemd scope: its unit and slice. Delete stops the unit (the
   * native front too, with dist/pocrun-systemd).
   */
  systemd?: { unit: string; slice: string };
  /** Without a mount namespace of its own: what to unmount at delete (shared-mounts.ts). */
  sharedMounts?: SharedMounts;
  /** The hooks that run after create; the bundle may be gone by the time delete runs. */
  hooks: { poststart?: Hook[]; poststop?: Hook[] };
  owner: string;
}

export type { Status };

// The fields the native front reads are the record's (a rename here without src/vocabulary/state-record.ts fails).
FRONT_RECORD_FIELDS satisfies readonly (keyof ContainerRecord)[];

export class Store {
  constructor(readonly root: string = DEFAULT_ROOT) {}

  dir(id: string): string {
    return join(this.root, checkId(id));
  }

  fifoPath(id: string): string {
    return join(this.dir(id), STATE_FILES.execFifo);
  }

  /** Makes the state directory; the mkdir is what makes two creates of one id exclusive. */
  makeDir(id: string): string {
    const dir = this.dir(id);
    try {
      mkdirSync(this.root, { recursive: true, mode: 0o711 });
      mkdirSync(dir, { mode: 0o711 });
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') throw new PocrunError(`container "${id}" already exists`);
      throw wrapError(`create state directory ${dir}`, err);
    }
    return dir;
  }

  exists(id: string): boolean {
    return existsSync(join(this.dir(id), STATE_FILES.record));
  }

  read(id: string): ContainerRecord {
    const file = join(this.dir(id), STATE_FILES.record);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new PocrunError(`container "${id}" does not exist`);
      throw wrapError(`read ${file}`, err);
    }
    try {
      return JSON.parse(text) as ContainerRecord;
    } catch {
      throw new PocrunError(`container "${id}": ${file} is corrupt; "pocrun delete --force ${id}" removes it`);
    }
  }

  /**
   * tmp + rename: a reader sees the old state or the new one, never half of one. No fsync (~4 ms on a disk):
   * the state describes processes, which a crash of the machine ends anyway; runc does not sync either.
   */
  write(record: ContainerRecord): void {
    const dir = this.dir(record.id);
    const tmp = join(dir, `.${STATE_FILES.record}.${process.pid}`);
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(record));
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, join(dir, STATE_FILES.record));
    } catch (err) {
      rmSync(tmp, { force: true });
      throw wrapError(`write state of container "${record.id}"`, err);
    }
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }

  ids(): string[] {
    try {
      return readdirSync(this.root).filter((name) => !name.startsWith('.') && existsSync(join(this.root, name, STATE_FILES.record)));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw wrapError(`list ${this.root}`, err);
    }
  }

  /**
   * Serialises commands on one container. A lock file made with O_EXCL holds the owner's pid and start time,
   * so a lock left by a killed command is recognised as stale and taken over.
   */
  lock(id: string, timeoutMs = 10_000): () => void {
    const file = join(this.dir(id), STATE_FILES.lock);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let taken: boolean;
      try {
        taken = tryLockFile(file);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') throw new PocrunError(`container "${id}" does not exist`);
        throw wrapError(`lock container "${id}"`, err);
      }
      if (taken) {
        // Idempotent: a second call must not remove a lock another command took meanwhile.
        let held = true;
        return () => {
          if (held) rmSync(file, { force: true });
          held = false;
        };
      }
      const holder = lockFileHolder(file);
      if (takeOverStale(file, holder)) continue;
      if (Date.now() > deadline) throw new PocrunError(`container "${id}" is busy: another pocrun command (pid ${holder.split(' ')[0]}) holds its lock`);
      sleepMs(5);
    }
  }
}
