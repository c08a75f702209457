/**
 * The `busybox` image, built offline from the host's busybox-static in well under a second: /bin/busybox and
 * a link per applet, /usr/bin and the sbin directories as links to /bin, the usual users, and empty mount points.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, mkdirSync, openSync, readSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PocError, wrapError } from '../errors.js';
import type { RootOptions } from '../poc-root.js';
import { commitImage, createStaging, defaultImageConfig, findImageByName, type ImageRecord } from './image-store.js';

export const BUSYBOX_IMAGE = 'busybox';
const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox', '/usr/sbin/busybox', '/sbin/busybox'];

export const BUSYBOX_PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'user:x:1000:1000:user:/home/user:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');

export const BUSYBOX_GROUP = ['root:x:0:', 'user:x:1000:', 'nogroup:x:65534:', 'nobody:x:65534:', ''].join('\n');

/**
 * The files of the image, as a plan (pure): directories with modes, symlinks, files with content. The busybox
 * binary itself and its applet links are added from the host's binary.
 */
export function busyboxLayout(applets: string[]): {
  dirs: Array<[string, number]>;
  links: Array<[string, string]>;
  files: Array<[string, string, number]>;
} {
  const dirs: Array<[string, number]> = [
    ['bin', 0o755],
    ['dev', 0o755],
    ['etc', 0o755],
    ['home', 0o755],
    ['home/user', 0o755],
    ['proc', 0o555],
    ['root', 0o700],
    ['run', 0o755],
    ['sys', 0o555],
    ['tmp', 0o1777],
    ['usr', 0o755],
    ['var', 0o755],
    ['var/tmp', 0o1777],
  ];
  const links: Array<[string, string]> = [
    ['sbin', 'bin'],
    ['usr/bin', '../bin'],
    ['usr/sbin', '../bin'],
  ];
  for (const a of new Set(applets)) {
    if (a === 'busybox' || !/^[A-Za-z0-9_.[-]+$/.test(a)) continue;
    links.push([`bin/${a}`, 'busybox']);
  }
  const files: Array<[string, string, number]> = [
    ['etc/passwd', BUSYBOX_PASSWD, 0o644],
    ['etc/group', BUSYBOX_GROUP, 0o644],
    ['etc/shadow', 'root:*:0:0:99999:7:::\nuser:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n', 0o640],
    // Placeholders: poc bind-mounts each container's own files over these.
    ['etc/hosts', '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n', 0o644],
    ['etc/hostname', 'localhost\n', 0o644],
    ['etc/resolv.conf', '', 0o644],
  ];
  return { dirs, links, files };
}

/** A static binary has no PT_INTERP program header. */
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(64);
    readSync(fd, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2) return false; // ELF, 64-bit
    const phoff = Number(head.readBigUInt64LE(32));
    const phentsize = head.readUInt16LE(54);
    const phnum = head.readUInt16LE(56);
    const ph = Buffer.alloc(phentsize * phnum);
    readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3) return false; // PT_INTERP
    return true;
  } finally {
    closeSync(fd);
  }
}

export function findHostBusybox(): string {
  for (const c of BUSYBOX_CANDIDATES) {
    try {
      if (isStaticElf(c)) return c;
    } catch {
      // not there
    }
  }
  throw new PocError(`no static busybox found (looked at ${BUSYBOX_CANDIDATES.join(', ')}): install busybox-static`);
}

export interface BuildBusyboxOptions extends RootOptions {
  /** Rebuild even if an image of that name exists. */
  force?: boolean;
  name?: string;
  /** Path of a static busybox binary; default: the host's. */
  busybox?: string;
}

/** `poc init --busybox`: returns the existing image unless force. */
export async function buildBusyboxImage(opts: BuildBusyboxOptions = {}): Promise<ImageRecord> {
  const name = opts.name ?? BUSYBOX_IMAGE;
  const existing = findImageByName(name, opts);
  if (existing && !opts.force) return existing;
  const busybox = opts.busybox ?? findHostBusybox();
  let applets: string[];
  try {
    applets = execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch (err) {
    throw wrapError(`${busybox} --list`, err);
  }
  const staging = createStaging(opts);
  try {
    const root = staging.rootfs;
    const layout = busyboxLayout(applets);
    for (const [d, mode] of layout.dirs) {
      mkdirSync(join(root, d), { recursive: true });
      chmodSync(join(root, d), mode);
    }
    copyFileSync(busybox, join(root, 'bin/busybox'));
    chmodSync(join(root, 'bin/busybox'), 0o755);
    for (const [path, target] of layout.links) symlinkSync(target, join(root, path));
    for (const [path, content, mode] of layout.files) {
      writeFileSync(join(root, path), content);
      chmodSync(join(root, path), mode);
    }
    return await commitImage(staging, {
      ...opts,
      name,
      replace: opts.force,
      source: { kind: 'busybox', path: busybox },
      config: defaultImageConfig({ Cmd: ['sh'] }),
    });
  } catch (err) {
    staging.discard();
    throw wrapError('build busybox image', err);
  }
}
