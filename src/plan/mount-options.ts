import { PocrunError } from '../errors.js';

// mount(2) flags, from <linux/mount.h>.
export const MS = {
  RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, SYNCHRONOUS: 16, REMOUNT: 32, MANDLOCK: 64, DIRSYNC: 128,
  NOSYMFOLLOW: 256, NOATIME: 1024, NODIRATIME: 2048, BIND: 4096, MOVE: 8192, REC: 16384, SILENT: 32768,
  UNBINDABLE: 1 << 17, PRIVATE: 1 << 18, SLAVE: 1 << 19, SHARED: 1 << 20, RELATIME: 1 << 21,
  I_VERSION: 1 << 23, STRICTATIME: 1 << 24, LAZYTIME: 1 << 25,
} as const;

// mount_setattr(2) attributes, for the recursive options.
export const MOUNT_ATTR = {
  RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, RELATIME: 0x0, NOATIME: 0x10, STRICTATIME: 0x20,
  ATIME_MASK: 0x70, NODIRATIME: 0x80, NOSYMFOLLOW: 0x200000,
} as const;

/** An option either sets or clears flags. */
const FLAG_OPTIONS: Record<string, { set?: number; clear?: number }> = {
  async: { clear: MS.SYNCHRONOUS },
  atime: { clear: MS.NOATIME },
  bind: { set: MS.BIND },
  defaults: {},
  dev: { clear: MS.NODEV },
  diratime: { clear: MS.NODIRATIME },
  dirsync: { set: MS.DIRSYNC },
  exec: { clear: MS.NOEXEC },
  iversion: { set: MS.I_VERSION },
  lazytime: { set: MS.LAZYTIME },
  loud: { clear: MS.SILENT },
  mand: { set: MS.MANDLOCK },
  noatime: { set: MS.NOATIME },
  nodev: { set: MS.NODEV },
  nodiratime: { set: MS.NODIRATIME },
  noexec: { set: MS.NOEXEC },
  noiversion: { clear: MS.I_VERSION },
  nolazytime: { clear: MS.LAZYTIME },
  nomand: { clear: MS.MANDLOCK },
  norelatime: { clear: MS.RELATIME },
  nostrictatime: { clear: MS.STRICTATIME },
  nosuid: { set: MS.NOSUID },
  nosymfollow: { set: MS.NOSYMFOLLOW },
  rbind: { set: MS.BIND | MS.REC },
  relatime: { set: MS.RELATIME },
  remount: { set: MS.REMOUNT },
  ro: { set: MS.RDONLY },
  rw: { clear: MS.RDONLY },
  silent: { set: MS.SILENT },
  strictatime: { set: MS.STRICTATIME },
  suid: { clear: MS.NOSUID },
  sync: { set: MS.SYNCHRONOUS },
};

const PROPAGATION_OPTIONS: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE, runbindable: MS.UNBINDABLE | MS.REC,
};

/** The recursive options (config.md [^3]), applied with mount_setattr(AT_RECURSIVE). */
const RECURSIVE_OPTIONS: Record<string, { set?: number; clear?: number }> = {
  rro: { set: MOUNT_ATTR.RDONLY }, rrw: { clear: MOUNT_ATTR.RDONLY },
  rnosuid: { set: MOUNT_ATTR.NOSUID }, rsuid: { clear: MOUNT_ATTR.NOSUID },
  rnodev: { set: MOUNT_ATTR.NODEV }, rdev: { clear: MOUNT_ATTR.NODEV },
  rnoexec: { set: MOUNT_ATTR.NOEXEC }, rexec: { clear: MOUNT_ATTR.NOEXEC },
  rnodiratime: { set: MOUNT_ATTR.NODIRATIME }, rdiratime: { clear: MOUNT_ATTR.NODIRATIME },
  rrelatime: { set: MOUNT_ATTR.RELATIME, clear: MOUNT_ATTR.ATIME_MASK },
  rnorelatime: { clear: MOUNT_ATTR.ATIME_MASK },
  rnoatime: { set: MOUNT_ATTR.NOATIME, clear: MOUNT_ATTR.ATIME_MASK },
  ratime: { clear: MOUNT_ATTR.ATIME_MASK },
  rstrictatime: { set: MOUNT_ATTR.STRICTATIME, clear: MOUNT_ATTR.ATIME_MASK },
  rnostrictatime: { clear: MOUNT_ATTR.ATIME_MASK },
  rnosymfollow: { set: MOUNT_ATTR.NOSYMFOLLOW }, rsymfollow: { clear: MOUNT_ATTR.NOSYMFOLLOW },
};

export interface ParsedMountOptions {
  flags: number;
  propagation: number[];
  attrSet: number;
  attrClear: number;
  /** Options the kernel parses itself ("mode=755", "size=64k"), joined with commas. */
  data: string;
  /** tmpcopyup (runc's extension, podman's --read-only): copy what the directory held into the new tmpfs. */
  copyUp: boolean;
  /** `idmap` or `ridmap` (config.md): an id-mapped bind mount, the mapping applied to its submounts too for ridmap. */
  idmap?: 'idmap' | 'ridmap';
}

/** Turns config.json's option strings into mount(2) arguments, as runc does: unknown words are filesystem data. */
export function parseMountOptions(options: readonly string[] = []): ParsedMountOptions {
  let flags = 0;
  let attrSet = 0;
  let attrClear = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  let copyUp = false;
  let idmap: ParsedMountOptions['idmap'];
  for (const option of options) {
    const flag = FLAG_OPTIONS[option];
    const recursive = RECURSIVE_OPTIONS[option];
    if (flag) {
      flags = (flags | (flag.set ?? 0)) & ~(flag.clear ?? 0);
    } else if (option in PROPAGATION_OPTIONS) {
      propagation.push(PROPAGATION_OPTIONS[option]!);
    } else if (recursive) {
      attrClear |= recursive.clear ?? 0;
      attrSet = (attrSet & ~(recursive.clear ?? 0)) | (recursive.set ?? 0);
      attrClear &= ~(recursive.set ?? 0);
    } else if (option === 'tmpcopyup') {
      copyUp = true;
    } else if (option === 'idmap' || option === 'ridmap') {
      idmap = idmap === 'ridmap' ? idmap : option;
    } else if (option === '') {
      throw new PocrunError('empty mount option');
    } else {
      data.push(option);
    }
  }
  return { flags, propagation, attrSet, attrClear, data: data.join(','), copyUp, ...(idmap ? { idmap } : {}) };
}

export function propagationFlags(name: string): number | undefined {
  return PROPAGATION_OPTIONS[name];
}

/** Every option word parsed here (`pocrun features`); any other word is filesystem data for mount(2). */
export function knownMountOptions(): string[] {
  return [...Object.keys(FLAG_OPTIONS), ...Object.keys(PROPAGATION_OPTIONS), ...Object.keys(RECURSIVE_OPTIONS), 'tmpcopyup', 'idmap', 'ridmap'].sort();
}
