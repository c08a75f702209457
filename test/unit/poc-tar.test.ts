import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { applyLayer, entryPath } from '../../src/poc/images/layer.js';
import { buildTar, parseNumber, parsePax, readTar, type TarWriteEntry } from '../../src/poc/images/tar.js';

const work = mkdtempSync(join(tmpdir(), 'poc-tar-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

async function* chunks(buf: Buffer, size = 700): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function list(buf: Buffer, size?: number) {
  const out: Array<{ name: string; type: string; data: string; linkname: string }> = [];
  for await (const e of readTar(chunks(buf, size))) {
    const parts: Buffer[] = [];
    for await (const c of e.body()) parts.push(c);
    out.push({ name: e.name, type: e.type, data: Buffer.concat(parts).toString(), linkname: e.linkname });
  }
  return out;
}

let n = 0;
function rootfs(): string {
  const d = join(work, `rootfs${n++}`);
  mkdirSync(d);
  return d;
}

const apply = (dir: string, entries: TarWriteEntry[], opts: { end?: boolean } = {}) => applyLayer(dir, chunks(buildTar(entries, opts)), { chown: false });

t.test('numbers: octal, space or NUL terminated, and GNU base-256', async (t) => {
  const cases: Array<[Buffer, number]> = [
    [Buffer.from('0000644\0'), 0o644],
    [Buffer.from('     17 '), 0o17],
    [Buffer.from('\0\0\0\0'), 0],
    [Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00]), 256],
  ];
  for (const [field, want] of cases) t.equal(parseNumber(field, 'size'), want, JSON.stringify(field.toString('latin1')));
  t.throws(() => parseNumber(Buffer.from('12x4'), 'size'), /invalid size "12x4"/);
});

t.test('pax records', async (t) => {
  t.same(parsePax(Buffer.from('30 path=a/very/long/name/here\n19 linkpath=target\n')), { path: 'a/very/long/name/here', linkpath: 'target' });
  t.throws(() => parsePax(Buffer.from('99 path=x\n')), /invalid pax/);
});

t.test('extended attributes: SCHILY.xattr records, values byte for byte, written and read back', async (t) => {
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i)); // every byte, "\n", "=" and invalid UTF-8 included
  const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
  const buf = buildTar([
    { name: 'ping', data: 'x', xattrs: { 'security.capability': cap, 'user.all': bytes, 'user.empty': '' } },
    { name: 'plain', data: 'y' },
    { name: 'dir/', type: 'dir', xattrs: { 'user.label': 'ünïcode' } },
  ]);
  const got: Array<[string, Record<string, string> | undefined]> = [];
  for await (const e of readTar(chunks(buf, 100))) {
    for await (const _ of e.body());
    got.push([e.name, e.xattrs && Object.fromEntries(Object.entries(e.xattrs).map(([k, v]) => [k, v.toString('hex')]))]);
  }
  t.same(got, [
    ['ping', { 'security.capability': cap.toString('hex'), 'user.all': bytes.toString('hex'), 'user.empty': '' }],
    ['plain', undefined],
    ['dir/', { 'user.label': Buffer.from('ünïcode').toString('hex') }],
  ]);
  // As GNU tar writes them (tar --xattrs), and the other pax keys still read as UTF-8 text.
  t.same(parsePax(Buffer.concat([Buffer.from('31 SCHILY.xattr.user.poc=hello\n15 path=dïr/f\n')])), { 'SCHILY.xattr.user.poc': 'hello', path: 'dïr/f' });
});

t.test('reads files, dirs, links; long names through pax; any chunking', async (t) => {
  const long = `${'d'.repeat(80)}/${'f'.repeat(80)}`;
  const buf = buildTar([
    { name: 'etc/', type: 'dir' },
    { name: 'etc/motd', data: 'hello' },
    { name: long, data: 'x'.repeat(1000) },
    { name: 'link', type: 'symlink', linkname: 'etc/motd' },
    { name: 'hard', type: 'hardlink', linkname: 'etc/motd' },
  ]);
  for (const size of [1, 512, 700, 100000]) {
    const got = await list(buf, size);
    t.same(
      got.map((e) => [e.name, e.type, e.data.length, e.linkname]),
      [
        ['etc/', 'dir', 0, ''],
        ['etc/motd', 'file', 5, ''],
        [long, 'file', 1000, ''],
        ['link', 'symlink', 0, 'etc/motd'],
        ['hard', 'hardlink', 0, 'etc/motd'],
      ],
      `chunks of ${size}`,
    );
  }
});

t.test('reads what GNU tar writes: gnu long names, pax, and ustar prefix', async (t) => {
  const src = join(work, 'gnu-src');
  const deep = join(src, 'a'.repeat(60), 'b'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'c'.repeat(90)), 'deep');
  for (const format of ['gnu', 'pax', 'ustar']) {
    const buf = execFileSync('tar', ['-C', src, `--format=${format}`, '-cf', '-', '.']);
    const got = await list(buf);
    const file = got.find((e) => e.type === 'file');
    t.equal(file?.name, `./${'a'.repeat(60)}/${'b'.repeat(60)}/${'c'.repeat(90)}`, format);
    t.equal(file?.data, 'deep', format);
  }
});

t.test('entry names: absolute and ".." refused, "./" accepted', async (t) => {
  const cases: Array<[string, string[] | RegExp]> = [
    ['./etc/passwd', ['etc', 'passwd']],
    ['etc//x/./y', ['etc', 'x', 'y']],
    ['./', []],
    ['/etc/passwd', /absolute path refused/],
    ['../../etc/passwd', /".." in path refused/],
    ['a/../../b', /".." in path refused/],
  ];
  for (const [name, want] of cases) {
    if (want instanceof RegExp) t.throws(() => entryPath(name), { message: want }, name);
    else t.same(entryPath(name), want, name);
  }
});

t.test('extraction writes files with modes and targets', async (t) => {
  const d = rootfs();
  const stats = await apply(d, [
    { name: './bin/', type: 'dir', mode: 0o755 },
    { name: './bin/tool', data: '#!/bin/sh\n', mode: 0o4755 },
    { name: './bin/alias', type: 'symlink', linkname: 'tool' },
    { name: './bin/hard', type: 'hardlink', linkname: './bin/tool' },
    { name: './tmp/', type: 'dir', mode: 0o1777 },
    { name: './run/fifo', type: 'fifo' },
  ]);
  t.equal(readFileSync(join(d, 'bin/tool'), 'utf8'), '#!/bin/sh\n');
  t.equal(statSync(join(d, 'bin/tool')).mode & 0o7777, 0o4755);
  t.equal(statSync(join(d, 'tmp')).mode & 0o7777, 0o1777);
  t.equal(readlinkSync(join(d, 'bin/alias')), 'tool');
  t.equal(statSync(join(d, 'bin/hard')).ino, statSync(join(d, 'bin/tool')).ino);
  t.ok(lstatSync(join(d, 'run/fifo')).isFIFO());
  t.equal(stats.entries, 6);
  t.equal(stats.bytes, 10);
});

t.test('no entry can write outside the rootfs', async (t) => {
  const outside = join(work, 'outside');
  mkdirSync(outside);
  const cases: Array<[string, TarWriteEntry[], RegExp]> = [
    ['dot-dot', [{ name: '../../outside/pwned', data: 'x' }], /"\.\.\/\.\.\/outside\/pwned": ".." in path refused/],
    ['absolute', [{ name: `${outside}/pwned`, data: 'x' }], /absolute path refused/],
    [
      'symlink then write through it',
      [
        { name: 'evil', type: 'symlink', linkname: outside },
        { name: 'evil/pwned', data: 'x' },
      ],
      /"evil\/pwned": parent "evil" is a symbolic link; refusing to write through it/,
    ],
    [
      'relative symlink then write through it',
      [
        { name: 'a/', type: 'dir' },
        { name: 'a/up', type: 'symlink', linkname: '../../outside' },
        { name: 'a/up/pwned', data: 'x' },
      ],
      /parent "a\/up" is a symbolic link/,
    ],
    [
      'symlink then hard link through it',
      [
        { name: 'evil', type: 'symlink', linkname: '/etc' },
        { name: 'h', type: 'hardlink', linkname: 'evil/passwd' },
      ],
      /parent "evil" is a symbolic link/,
    ],
    ['hard link out', [{ name: 'h', type: 'hardlink', linkname: '../outside/x' }], /".." in path refused/],
    ['whiteout through symlink', [{ name: 'evil', type: 'symlink', linkname: outside }, { name: 'evil/.wh.x' }], /parent "evil" is a symbolic link/],
  ];
  writeFileSync(join(outside, 'x'), 'keep');
  for (const [what, entries, message] of cases) {
    await t.rejects(apply(rootfs(), entries), { name: 'PocError', message }, what);
  }
  t.same(readdirSync(outside), ['x'], 'nothing was written outside');
  t.equal(readFileSync(join(outside, 'x'), 'utf8'), 'keep');
});

t.test('a file replaces a symlink of the same name instead of following it', async (t) => {
  const d = rootfs();
  const target = join(work, 'victim');
  writeFileSync(target, 'original');
  await apply(d, [
    { name: 'f', type: 'symlink', linkname: target },
    { name: 'f', data: 'new' },
  ]);
  t.equal(readFileSync(target, 'utf8'), 'original');
  t.ok(lstatSync(join(d, 'f')).isFile());
  t.equal(readFileSync(join(d, 'f'), 'utf8'), 'new');
});

t.test('truncated archives are errors that say so', async (t) => {
  const full = buildTar([
    { name: 'a', data: 'x'.repeat(2000) },
    { name: 'b', data: 'y' },
  ]);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['inside file data', full.subarray(0, 1200), /truncated tar archive: after \d+ of 2000 bytes \(last entry "a"\)/],
    ['inside a header', full.subarray(0, 2560 + 100), /truncated tar archive: inside a header/],
    ['no end marker', buildTar([{ name: 'a', data: 'x' }], { end: false }), /truncated tar archive: no end-of-archive marker/],
    ['empty', Buffer.alloc(0), /truncated tar archive: the archive is empty/],
  ];
  for (const [what, buf, message] of cases) await t.rejects(applyLayer(rootfs(), chunks(buf), { chown: false }), { message }, what);
  await t.rejects(applyLayer(rootfs(), chunks(Buffer.from('not a tar'.repeat(100))), { chown: false }), /checksum mismatch/);
});

t.test('whiteouts delete from lower layers; opaque dirs keep only this layer', async (t) => {
  const d = rootfs();
  await apply(d, [
    { name: 'etc/', type: 'dir' },
    { name: 'etc/a', data: 'a' },
    { name: 'etc/b', data: 'b' },
    { name: 'opt/', type: 'dir' },
    { name: 'opt/old1', data: '1' },
    { name: 'opt/sub/', type: 'dir' },
    { name: 'opt/sub/old2', data: '2' },
    { name: 'var/', type: 'dir' },
    { name: 'var/gone/', type: 'dir' },
    { name: 'var/gone/x', data: 'x' },
  ]);
  await apply(d, [
    { name: 'etc/.wh.a' },
    { name: 'opt/new', data: 'n' },
    { name: 'opt/.wh..wh..opq' },
    { name: 'var/.wh.gone' },
    { name: 'var/.wh.never-existed' },
    { name: 'nodir/.wh.x' },
  ]);
  t.same(readdirSync(join(d, 'etc')), ['b']);
  t.same(readdirSync(join(d, 'opt')), ['new'], 'opaque: lower entries gone, this layer\'s kept');
  t.same(readdirSync(join(d, 'var')), []);
  t.notOk(existsSync(join(d, 'nodir')), 'a whiteout does not create its directory');
  t.notOk(existsSync(join(d, 'etc/.wh.a')), 'whiteout files are not extracted');
});

t.test('a later layer replaces a directory by a file and a file by a directory', async (t) => {
  const d = rootfs();
  await apply(d, [{ name: 'x/', type: 'dir' }, { name: 'x/inner', data: 'i' }, { name: 'y', data: 'file' }]);
  await apply(d, [{ name: 'x', data: 'now a file' }, { name: 'y/', type: 'dir' }, { name: 'y/z', data: 'z' }]);
  t.equal(readFileSync(join(d, 'x'), 'utf8'), 'now a file');
  t.ok(statSync(join(d, 'y')).isDirectory());
});

t.test('a symlink existing in the rootfs is never followed by a later layer', async (t) => {
  const d = rootfs();
  const outside = mkdtempSync(join(work, 'out-'));
  symlinkSync(outside, join(d, 'lib'));
  await t.rejects(apply(d, [{ name: 'lib/evil.so', data: 'x' }]), /parent "lib" is a symbolic link/);
  t.same(readdirSync(outside), []);
});
