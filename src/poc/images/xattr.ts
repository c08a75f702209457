/**
 * Extended attributes of imported files (security.capability on ping, user.* labels), set with lsetxattr(2)
 * and read back with llistxattr(2)/lgetxattr(2) when a layer is written (and overlayfs's opaque marks read)
 * through Bun's FFI: Node has no xattr API, and a setfattr process per file would make an image whose every
 * file is labelled slow to import. libc is opened the first time an archive has an attribute.
 */
import { getSystemErrorName } from 'node:util';
import { PocError } from '../errors.js';

interface Libc {
  lsetxattr(path: Buffer, name: Buffer, value: Buffer, size: number, flags: number): number;
  lgetxattr(path: Buffer, name: Buffer, value: Buffer, size: number): number;
  llistxattr(path: Buffer, list: Buffer, size: number): number;
  __errno_location(): unknown;
}

let libc: Libc | undefined;
let readI32: ((ptr: unknown, offset: number) => number) | undefined;

async function loadLibc(): Promise<Libc> {
  if (libc) return libc;
  const specifier = 'bun:ffi'; // not a literal: the Node that runs the unit tests cannot resolve it
  let ffi;
  try {
    ffi = await import(specifier);
  } catch {
    throw new PocError('setting extended attributes needs the compiled poc (Bun\'s FFI); this runtime has none');
  }
  const { FFIType: T } = ffi;
  const lib = ffi.dlopen('libc.so.6', {
    lsetxattr: { args: [T.ptr, T.ptr, T.ptr, T.u64, T.i32], returns: T.i32 },
    lgetxattr: { args: [T.ptr, T.ptr, T.ptr, T.u64], returns: T.i64 },
    llistxattr: { args: [T.ptr, T.ptr, T.u64], returns: T.i64 },
    __errno_location: { args: [], returns: T.ptr },
  });
  readI32 = ffi.read.i32;
  libc = lib.symbols as Libc;
  return libc;
}

const cString = (s: string) => Buffer.from(`${s}\0`);

/** EPERM and EOPNOTSUPP: this filesystem or this process cannot hold that attribute; skipped, as Docker does. */
const NOT_HERE = new Set([1, 95]);

/**
 * Sets each attribute on path itself (never through a symlink). Returns the attributes that the filesystem or
 * the process's privileges do not allow, as "name (ERRNO)"; any other failure throws.
 */
export async function setXattrs(path: string, xattrs: Record<string, Buffer>): Promise<string[]> {
  const c = await loadLibc();
  const skipped: string[] = [];
  for (const [name, value] of Object.entries(xattrs)) {
    // A zero-length Buffer may have no memory behind it; the kernel reads nothing when size is 0.
    const data = value.length ? value : Buffer.alloc(1);
    if (c.lsetxattr(cString(path), cString(name), data, value.length, 0) === 0) continue;
    const errno = readI32!(c.__errno_location(), 0);
    const code = getSystemErrorName(-errno);
    if (NOT_HERE.has(errno)) skipped.push(`${name} (${code})`);
    else throw new PocError(`set extended attribute ${name}: ${code}`);
  }
  return skipped;
}

const ENODATA = 61;
const ERANGE = 34;

/**
 * The attributes of path itself (never through a symlink), by name, that `keep` accepts. A filesystem without
 * attributes gives none.
 */
export async function readXattrs(path: string, keep: (name: string) => boolean = () => true): Promise<Record<string, Buffer>> {
  const c = await loadLibc();
  const p = cString(path);
  let list = Buffer.alloc(256);
  let n: number;
  for (;;) {
    n = Number(c.llistxattr(p, list, list.length));
    if (n >= 0) break;
    const errno = readI32!(c.__errno_location(), 0);
    if (errno === 95) return {}; // EOPNOTSUPP
    if (errno !== ERANGE) throw new PocError(`list extended attributes of ${path}: ${getSystemErrorName(-errno)}`);
    list = Buffer.alloc(list.length * 4);
  }
  const out: Record<string, Buffer> = {};
  for (const name of list.subarray(0, n).toString('latin1').split('\0')) {
    if (name === '' || !keep(name)) continue;
    const value = await getXattr(path, name);
    if (value !== null) out[name] = value;
  }
  return out;
}

/** One attribute of path itself; null when it has none of that name. */
export async function getXattr(path: string, name: string): Promise<Buffer | null> {
  const c = await loadLibc();
  let value = Buffer.alloc(256);
  for (;;) {
    const n = Number(c.lgetxattr(cString(path), cString(name), value, value.length));
    if (n >= 0) return Buffer.from(value.subarray(0, n));
    const errno = readI32!(c.__errno_location(), 0);
    if (errno === ENODATA || errno === 95) return null;
    if (errno !== ERANGE) throw new PocError(`read extended attribute ${name} of ${path}: ${getSystemErrorName(-errno)}`);
    value = Buffer.alloc(value.length * 16);
  }
}
