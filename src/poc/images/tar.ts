/**
 * A small streaming tar reader: ustar, pax extended headers (path, linkpath, size, uid, gid, mtime, and
 * extended attributes as GNU tar and Go write them, SCHILY.xattr.NAME) and GNU long names ('L', 'K'), numbers in
 * octal or GNU base-256. It only reads; what an entry may do to the disk is
 * decided in layer.ts.
 *
 * Why our own reader rather than the system tar: the layer rules (whiteouts, opaque directories, refusing to
 * write through a symlink, knowing which entry was bad) need every entry's header before anything touches the
 * disk, and GNU tar's own listing (`tar -tv`) is a text format with quoting rules that vary between versions:
 * parsing it to pre-validate names is itself the fragile part. Reading the format is ~200 lines, and the
 * compiled binary then needs no tar on the host.
 */
import { PocError } from '../errors.js';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  /** As written in the archive (after pax/GNU long-name resolution); checked by the consumer. */
  name: string;
  type: TarEntryType;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Extended attributes by name (security.capability, user.*, ...), their values as the bytes archived. */
  xattrs?: Record<string, Buffer>;
}

/** What one 512-byte header block says, before pax and GNU extensions are applied. */
export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}

const BLOCK = 512;
const START = '(start of archive)';

/** Numbers are octal text (NUL or space terminated), or big-endian base-256 when the top bit is set (GNU). */
export function parseNumber(field: Buffer, what: string): number {
  if (field.length > 0 && (field[0]! & 0x80) !== 0) {
    if (field[0] === 0xff) throw new PocError(`negative ${what} in tar header`);
    let n = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    if (!Number.isSafeInteger(n)) throw new PocError(`${what} in tar header is too large`);
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new PocError(`invalid ${what} ${JSON.stringify(text)} in tar header`);
  return parseInt(text, 8);
}

function parseString(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? field.length : end).toString('utf8');
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** Parses one header block; `offset` is only for the error message. */
export function parseHeader(block: Buffer, offset = 0): RawHeader {
  let stored: number;
  try {
    stored = parseNumber(block.subarray(148, 156), 'checksum');
  } catch {
    stored = -1;
  }
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) {
    throw new PocError(`invalid tar header at byte ${offset} (checksum mismatch): not a tar archive, or damaged`);
  }
  const magic = block.subarray(257, 263).toString('latin1');
  let name = parseString(block.subarray(0, 100));
  // POSIX ustar splits long names into prefix/name; GNU ("ustar  ") uses that area for other fields.
  if (magic === 'ustar\0') {
    const prefix = parseString(block.subarray(345, 500));
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  return {
    name,
    mode: parseNumber(block.subarray(100, 108), 'mode'),
    uid: parseNumber(block.subarray(108, 116), 'uid'),
    gid: parseNumber(block.subarray(116, 124), 'gid'),
    size: parseNumber(block.subarray(124, 136), 'size'),
    mtime: parseNumber(block.subarray(136, 148), 'mtime'),
    typeflag: String.fromCharCode(block[156]!),
    linkname: parseString(block.subarray(157, 257)),
    devmajor: parseNumber(block.subarray(329, 337), 'devmajor'),
    devminor: parseNumber(block.subarray(337, 345), 'devminor'),
  };
}

/** The pax key prefix of an extended attribute (GNU tar, Go's archive/tar, Docker). */
const PAX_XATTR = 'SCHILY.xattr.';

/**
 * pax records: "<length> <key>=<value>\n", the length counting the whole record. Values are UTF-8 text but for
 * extended attributes, whose values are bytes: those are kept byte for byte (as latin1 text).
 */
export function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    const len = space === -1 ? NaN : Number(data.subarray(pos, space).toString('latin1'));
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) {
      throw new PocError(`invalid pax extended header record at byte ${pos}`);
    }
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw new PocError(`invalid pax extended header record ${JSON.stringify(record.toString('utf8'))}`);
    const key = record.subarray(0, eq).toString('utf8');
    out[key] = record.subarray(eq + 1).toString(key.startsWith(PAX_XATTR) ? 'latin1' : 'utf8');
    pos += len;
  }
  return out;
}

function paxXattrs(pax: Record<string, string>): Record<string, Buffer> | undefined {
  const names = Object.keys(pax).filter((k) => k.startsWith(PAX_XATTR) && k.length > PAX_XATTR.length);
  if (names.length === 0) return undefined;
  return Object.fromEntries(names.map((k) => [k.slice(PAX_XATTR.length), Buffer.from(pax[k]!, 'latin1')]));
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

function paxNumber(pax: Record<string, string>, key: string, fallback: number): number {
  const v = pax[key];
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new PocError(`invalid pax ${key} ${JSON.stringify(v)}`);
  return key === 'mtime' ? Math.floor(n) : n;
}

/** Pulls exact byte counts out of a stream of chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;
  offset = 0;

  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        break;
      }
      const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      if (chunk.length === 0) continue;
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
  }

  /** Up to n bytes; fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    return this.take(Math.min(n, this.buffered));
  }

  /** Whatever is buffered, or the next chunk, at most n bytes; empty at the end of the stream. */
  async readSome(n: number): Promise<Buffer> {
    if (this.buffered === 0) await this.fill(1);
    return this.take(Math.min(n, this.buffered, this.chunks[0]?.length ?? 0));
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let pos = 0;
      while (pos < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - pos);
        c.copy(out, pos, 0, k);
        pos += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    this.offset += n;
    return out;
  }

  async drain(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    while (!this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
    }
  }
}

export interface TarReadEntry extends TarEntry {
  /** The entry's data, in chunks. Must be consumed before the next entry is asked for, or it is skipped. */
  body(): AsyncIterable<Buffer>;
}

/**
 * Reads a tar stream entry by entry. A stream that ends inside an entry or before the end-of-archive block is
 * an error ("truncated"), so a cut download is never taken for a smaller image. After the end-of-archive
 * block the rest of the stream is read and dropped, so that a compressed stream's trailer is checked too.
 */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarReadEntry> {
  const reader = new ByteReader(source[Symbol.asyncIterator]());
  let globalPax: Record<string, string> = {};
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let previous = START;

  const readData = async (size: number, what: string): Promise<Buffer> => {
    const data = await reader.read(size);
    if (data.length < size) throw truncated(previous, `in the ${what} of ${JSON.stringify(previous)}`);
    await skipPadding(size);
    return data;
  };
  const skipPadding = async (size: number) => {
    const pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (pad > 0 && (await reader.read(pad)).length < pad) throw truncated(previous, 'in padding');
  };

  for (;;) {
    const at = reader.offset;
    const block = await reader.read(BLOCK);
    if (block.length === 0) {
      throw truncated(previous, at === 0 ? 'the archive is empty' : 'no end-of-archive marker');
    }
    if (block.length < BLOCK) throw truncated(previous, 'inside a header');
    if (isZeroBlock(block)) {
      await reader.drain();
      return;
    }
    const h = parseHeader(block, at);
    switch (h.typeflag) {
      case 'x':
        pax = { ...pax, ...parsePax(await readData(h.size, 'pax header')) };
        continue;
      case 'g':
        globalPax = { ...globalPax, ...parsePax(await readData(h.size, 'pax global header')) };
        continue;
      case 'L':
        longName = parseString(await readData(h.size, 'GNU long name'));
        continue;
      case 'K':
        longLink = parseString(await readData(h.size, 'GNU long link name'));
        continue;
    }
    const p = { ...globalPax, ...pax };
    const name = p.path ?? longName ?? h.name;
    pax = {};
    longName = undefined;
    const type = TYPES[h.typeflag];
    if (type === undefined || Object.keys(p).some((k) => k.startsWith('GNU.sparse.'))) {
      const kind = h.typeflag === 'S' || type !== undefined ? 'sparse file' : `entry type ${JSON.stringify(h.typeflag)}`;
      throw new PocError(`tar entry ${JSON.stringify(name)}: unsupported ${kind}`);
    }
    const entry: TarEntry = {
      name,
      type,
      size: paxNumber(p, 'size', h.size),
      mode: h.mode & 0o7777,
      uid: paxNumber(p, 'uid', h.uid),
      gid: paxNumber(p, 'gid', h.gid),
      mtime: paxNumber(p, 'mtime', h.mtime),
      linkname: p.linkpath ?? longLink ?? h.linkname,
      devmajor: h.devmajor,
      devminor: h.devminor,
    };
    const xattrs = paxXattrs(p);
    if (xattrs) entry.xattrs = xattrs;
    longLink = undefined;
    previous = name;
    // Only regular files carry data: for links, devices, fifos and directories the size is ignored (POSIX).
    const dataSize = type === 'file' ? entry.size : 0;
    let remaining = dataSize;
    const body = async function* (): AsyncGenerator<Buffer> {
      while (remaining > 0) {
        const chunk = await reader.readSome(Math.min(remaining, 1 << 20));
        if (chunk.length === 0) throw truncated(name, `after ${dataSize - remaining} of ${dataSize} bytes`);
        remaining -= chunk.length;
        yield chunk;
      }
    };
    yield { ...entry, body };
    while (remaining > 0) {
      const chunk = await reader.readSome(Math.min(remaining, 1 << 20));
      if (chunk.length === 0) throw truncated(name, `after ${dataSize - remaining} of ${dataSize} bytes`);
      remaining -= chunk.length;
    }
    await skipPadding(dataSize);
  }
}

function truncated(entry: string, where: string): PocError {
  const last = entry === START ? '' : ` (last entry ${JSON.stringify(entry)})`;
  return new PocError(`truncated tar archive: ${where}${last}`);
}

// ---------------------------------------------------------------------------------------------------------
// writing (small: for tests and for exporting a rootfs)

export interface TarWriteEntry {
  name: string;
  type?: TarEntryType;
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, string | Buffer>;
}

const TYPE_FLAGS: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function header(fields: { name: string; mode: number; uid: number; gid: number; size: number; mtime: number; typeflag: string; linkname: string; devmajor: number; devminor: number }): Buffer {
  const b = Buffer.alloc(BLOCK);
  const str = (s: string, off: number, len: number) => Buffer.from(s, 'utf8').subarray(0, len).copy(b, off);
  const oct = (n: number, off: number, len: number) => str(n.toString(8).padStart(len - 1, '0'), off, len - 1);
  str(fields.name, 0, 100);
  oct(fields.mode, 100, 8);
  oct(fields.uid, 108, 8);
  oct(fields.gid, 116, 8);
  oct(fields.size, 124, 12);
  oct(fields.mtime, 136, 12);
  b.write('        ', 148, 'latin1');
  b.write(fields.typeflag, 156, 'latin1');
  str(fields.linkname, 157, 100);
  b.write('ustar\u000000', 257, 'latin1');
  oct(fields.devmajor, 329, 8);
  oct(fields.devminor, 337, 8);
  let sum = 0;
  for (const x of b) sum += x;
  str(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return b;
}

function padded(data: Buffer): Buffer[] {
  const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
  return pad ? [data, Buffer.alloc(pad)] : [data];
}

/** Octal fields hold at most this much (11 digits for size and mtime, 7 for ids): beyond it, a pax record. */
const MAX_OCTAL_12 = 0o77777777777;
const MAX_OCTAL_8 = 0o7777777;

/**
 * The header blocks of one entry whose data (`size` bytes, for a file) follows: a pax header first where a name,
 * link target, size, id or extended attribute does not fit ustar. The caller writes the data and `tarPadding`.
 */
export function entryHeader(e: Omit<TarWriteEntry, 'data'> & { size: number }): Buffer {
  const type = e.type ?? 'file';
  const linkname = e.linkname ?? '';
  const uid = e.uid ?? 0;
  const gid = e.gid ?? 0;
  const size = type === 'file' ? e.size : 0;
  const pax: Buffer[] = [];
  if (Buffer.byteLength(e.name) > 100) pax.push(paxRecord('path', e.name));
  if (Buffer.byteLength(linkname) > 100) pax.push(paxRecord('linkpath', linkname));
  if (size > MAX_OCTAL_12) pax.push(paxRecord('size', String(size)));
  if (uid > MAX_OCTAL_8) pax.push(paxRecord('uid', String(uid)));
  if (gid > MAX_OCTAL_8) pax.push(paxRecord('gid', String(gid)));
  for (const [name, value] of Object.entries(e.xattrs ?? {})) pax.push(paxRecord(`${PAX_XATTR}${name}`, value));
  const out: Buffer[] = [];
  if (pax.length) {
    const body = Buffer.concat(pax);
    out.push(header({ name: 'PaxHeader', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: 0, typeflag: 'x', linkname: '', devmajor: 0, devminor: 0 }), ...padded(body));
  }
  out.push(
    header({
      name: e.name,
      mode: e.mode ?? (type === 'dir' ? 0o755 : 0o644),
      uid: Math.min(uid, MAX_OCTAL_8),
      gid: Math.min(gid, MAX_OCTAL_8),
      size: Math.min(size, MAX_OCTAL_12),
      mtime: Math.min(Math.max(0, e.mtime ?? 1_700_000_000), MAX_OCTAL_12),
      typeflag: TYPE_FLAGS[type],
      linkname,
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
    }),
  );
  return out.length === 1 ? out[0]! : Buffer.concat(out);
}

/** The zero bytes after `size` bytes of data, up to the next block. */
export function tarPadding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The two zero blocks that end an archive. */
export const TAR_END = Buffer.alloc(BLOCK * 2);

/** A ustar archive; names or link targets over 100 bytes get a pax header. `end: false` omits the end blocks. */
export function buildTar(entries: TarWriteEntry[], opts: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = type === 'file' ? Buffer.from(e.data ?? '') : Buffer.alloc(0);
    out.push(entryHeader({ ...e, size: data.length }), ...padded(data));
  }
  if (opts.end !== false) out.push(TAR_END);
  return Buffer.concat(out);
}

function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}
