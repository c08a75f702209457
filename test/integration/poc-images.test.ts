/**
 * Images as root, in a temporary POC_ROOT: the busybox image runs, tarballs made by the system's tar import
 * with owners, modes and device nodes, docker-save style archives apply their layers, and hostile archives are
 * refused without leaving anything behind.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { buildBusyboxImage, imageRootfs, importImage, listImages, removeImage } from '../../src/poc/images/index.js';
import { buildTar } from '../../src/poc/images/tar.js';
import { top } from '../helpers/runtime.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'owners and device nodes need root');
  process.exit(0);
}

const work = mkdtempSync(join(tmpdir(), 'poc-images-it-'));
const root = join(work, 'poc');
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const staging = () => readdirSync(join(root, 'images')).filter((n) => n.startsWith('.'));

t.test('the busybox image is built in about a second and runs', async (t) => {
  const started = Date.now();
  const img = await buildBusyboxImage({ root });
  t.ok(Date.now() - started < 3000, `built in ${Date.now() - started} ms`);
  const rootfs = imageRootfs(img, { root });
  t.equal(sh('chroot', [rootfs, 'sh', '-c', 'echo $((6*7)); id -u user; ls /usr/bin/env']), '42\n1000\n/usr/bin/env\n');
  t.equal(statSync(join(rootfs, 'tmp')).mode & 0o7777, 0o1777);
  t.match(readFileSync(join(rootfs, 'etc/group'), 'utf8'), /^user:x:1000:/m);
  for (const d of ['proc', 'sys', 'dev']) t.ok(statSync(join(rootfs, d)).isDirectory(), d);
});

t.test('a rootfs tarball from the system tar keeps owners, modes, links and device nodes', async (t) => {
  const src = join(work, 'src');
  mkdirSync(join(src, 'home/user'), { recursive: true });
  mkdirSync(join(src, 'dev'));
  writeFileSync(join(src, 'home/user/notes'), 'mine');
  sh('chown', ['-R', '1000:1000', join(src, 'home/user')]);
  writeFileSync(join(src, 'suid'), '#!/bin/sh\n');
  sh('chmod', ['4755', join(src, 'suid')]);
  symlinkSync('home/user/notes', join(src, 'link'));
  sh('mknod', [join(src, 'dev/null'), 'c', '1', '3']);
  const tarball = join(work, 'rootfs.tar.gz');
  sh('tar', ['-C', src, '--format=posix', '-czf', tarball, '.']);
  const img = await importImage(tarball, 'fromtar', { root });
  const r = imageRootfs(img, { root });
  const notes = statSync(join(r, 'home/user/notes'));
  t.same([notes.uid, notes.gid], [1000, 1000], 'owner kept');
  t.equal(statSync(join(r, 'suid')).mode & 0o7777, 0o4755, 'set-uid kept (chmod after chown)');
  t.ok(lstatSync(join(r, 'link')).isSymbolicLink());
  const dev = statSync(join(r, 'dev/null'));
  t.ok(dev.isCharacterDevice(), 'device node created');
  t.equal(dev.rdev, statSync('/dev/null').rdev);
});

t.test('extended attributes from the system tar are kept: a file capability and a user attribute', async (t) => {
  // Through the compiled poc: attributes are set with lsetxattr through Bun's FFI, which Node has not.
  const src = join(work, 'xattr-src');
  mkdirSync(src);
  writeFileSync(join(src, 'pinger'), '#!/bin/sh\n');
  writeFileSync(join(src, 'plain'), '');
  // cap_net_raw+ep as the kernel stores it (VFS_CAP_REVISION_2: magic with the effective bit, then permitted).
  const cap = '0100000200200000000000000000000000000000';
  const py = (code: string) => sh('python3', ['-c', code]);
  sh('chown', ['1000:1000', join(src, 'pinger')]); // first: chown clears a file capability
  py(`import os; os.setxattr(${JSON.stringify(join(src, 'pinger'))}, 'security.capability', bytes.fromhex('${cap}')); os.setxattr(${JSON.stringify(join(src, 'pinger'))}, 'user.poc', b'hello')`);
  const tarball = join(work, 'xattrs.tar');
  sh('tar', ['-C', src, '--format=posix', '--xattrs', '--xattrs-include=*', '-cf', tarball, '.']);
  const r = spawnSync(join(top, 'dist/poc'), ['import', tarball, 'withxattrs'], { encoding: 'utf8', env: { ...process.env, POC_ROOT: root } });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr, '', 'nothing left out');
  const img = listImages({ root }).find((i) => i.name === 'withxattrs')!;
  const pinger = join(imageRootfs(img, { root }), 'pinger');
  const attrs = py(`import os; p = ${JSON.stringify(pinger)}; print(os.getxattr(p, 'security.capability').hex(), os.getxattr(p, 'user.poc').decode(), sorted(os.listxattr(${JSON.stringify(join(imageRootfs(img, { root }), 'plain'))})))`);
  t.equal(attrs, `${cap} hello []\n`, 'the capability (set after chown, which clears it) and the user attribute');
  t.equal(statSync(pinger).uid, 1000);
  await removeImage(img.id, { root });

  // An ordinary user's poc imports in its own user namespace (here uid 1000 without subordinate ranges: only
  // root is mapped, to the user). Root's files are the user's, and the capability is kept as that namespace's
  // own (VFS_CAP_REVISION_3, whose root id is the user's uid), as rootless podman keeps it.
  const rootOwned = join(work, 'xattrs-root.tar');
  sh('tar', ['-C', src, '--format=posix', '--xattrs', '--xattrs-include=*', '--owner=0', '--group=0', '-cf', rootOwned, '.']);
  const userRoot = join(work, 'user-root');
  mkdirSync(userRoot);
  sh('chown', ['1000:1000', userRoot]);
  sh('chmod', ['755', work]);
  const asUser = spawnSync('setpriv', ['--reuid', '1000', '--regid', '1000', '--clear-groups', join(top, 'dist/poc'), 'import', rootOwned, 'mine'], {
    encoding: 'utf8', env: { ...process.env, POC_ROOT: userRoot, HOME: userRoot },
  });
  t.equal(asUser.status, 0, asUser.stderr);
  t.equal(asUser.stderr, '', 'nothing left out');
  const mine = join(imageRootfs(listImages({ root: userRoot }).find((i) => i.name === 'mine')!, { root: userRoot }), 'pinger');
  t.equal(statSync(mine).uid, 1000, "root's file is the user's");
  t.equal(
    py(`import os; p = ${JSON.stringify(mine)}; print(os.getxattr(p, 'security.capability').hex(), os.getxattr(p, 'user.poc').decode())`),
    `${cap.replace(/^01000002/, '01000003')}e8030000 hello\n`,
    "the capability as the user namespace's (revision 3, root id 1000), and the user attribute",
  );
});

t.test('a docker-save style archive made with the system tar: layers and whiteouts', async (t) => {
  const dir = join(work, 'save');
  const layer = (name: string, files: Record<string, string>) => {
    const d = join(dir, `${name}-src`);
    for (const [p, content] of Object.entries(files)) {
      mkdirSync(join(d, p, '..'), { recursive: true });
      writeFileSync(join(d, p), content);
    }
    mkdirSync(join(dir, name), { recursive: true });
    sh('tar', ['-C', d, '-cf', join(dir, name, 'layer.tar'), '.']);
    rmSync(d, { recursive: true });
  };
  layer('l1', { 'etc/os-release': 'ID=test\n', 'etc/old': 'old', 'var/cache/a': 'a', 'var/cache/b': 'b' });
  layer('l2', { 'etc/.wh.old': '', 'var/cache/.wh..wh..opq': '', 'var/cache/c': 'c' });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ architecture: 'amd64', config: { Env: ['PATH=/bin', 'GREETING=hi'], Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo $GREETING'], WorkingDir: '/srv', User: '1000' } }));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['docker.io/library/layered:1.0'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]));
  const archive = join(work, 'layered.tar');
  sh('tar', ['-C', dir, '-cf', archive, 'manifest.json', 'config.json', 'l1', 'l2']);
  const img = await importImage(archive, undefined, { root });
  t.equal(img.name, 'layered:1.0');
  t.same(img.config, { Env: ['PATH=/bin', 'GREETING=hi'], Cmd: ['echo $GREETING'], Entrypoint: ['/bin/sh', '-c'], WorkingDir: '/srv', User: '1000' });
  const r = imageRootfs(img, { root });
  t.same(readdirSync(join(r, 'etc')), ['os-release']);
  t.same(readdirSync(join(r, 'var/cache')), ['c']);
  t.notOk(existsSync(join(r, 'manifest.json')), 'the archive wrapper is not part of the rootfs');
});

t.test('hostile tarballs are refused, naming the entry, and leave nothing behind', async (t) => {
  const victim = join(work, 'victim');
  mkdirSync(victim);
  writeFileSync(join(victim, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  const cases: Array<[string, Buffer, RegExp]> = [
    ['path traversal', buildTar([{ name: 'etc/', type: 'dir' }, { name: `../../../../../../..${victim}/passwd`, data: 'pwned' }]), /"\.\.\/.*\/passwd": "\.\." in path refused/],
    ['absolute path', buildTar([{ name: `${victim}/passwd`, data: 'pwned' }]), /absolute path refused/],
    ['symlink then write', buildTar([{ name: 'etc', type: 'symlink', linkname: victim }, { name: 'etc/passwd', data: 'pwned' }]), /"etc\/passwd": parent "etc" is a symbolic link; refusing to write through it/],
    ['hard link to a host file', buildTar([{ name: 'x', type: 'hardlink', linkname: `${victim}/passwd` }]), /absolute path refused/],
  ];
  const before = listImages({ root }).length;
  for (const [what, buf, message] of cases) {
    const f = join(work, `${what.replace(/ /g, '-')}.tar`);
    writeFileSync(f, buf);
    await t.rejects(importImage(f, 'evil', { root }), { name: 'PocError', message }, what);
  }
  // The same traversal made by GNU tar itself (-P keeps the "../" it would otherwise strip).
  const gnu = join(work, 'gnu-evil.tar');
  sh('tar', ['-C', work, '-P', '-cf', gnu, `victim/../victim/passwd`]);
  await t.rejects(importImage(gnu, 'evil', { root }), /"victim\/\.\.\/victim\/passwd": "\.\." in path refused/);
  t.equal(readFileSync(join(victim, 'passwd'), 'utf8'), 'root:x:0:0::/root:/bin/sh\n', 'the host file is untouched');
  t.same(readdirSync(victim), ['passwd']);
  t.equal(listImages({ root }).length, before, 'no image added');
  t.same(staging(), [], 'no staging directory left');
});

t.test('a truncated tarball gives a clear error and leaves nothing behind', async (t) => {
  const src = join(work, 'big');
  mkdirSync(src);
  writeFileSync(join(src, 'blob'), Buffer.alloc(1 << 20, 7));
  const full = join(work, 'big.tar');
  sh('tar', ['-C', src, '-cf', full, '.']);
  const cut = join(work, 'cut.tar');
  writeFileSync(cut, readFileSync(full).subarray(0, 300_000));
  await t.rejects(importImage(cut, 'cut', { root }), /import .*cut\.tar: truncated tar archive: after \d+ of 1048576 bytes \(last entry "\.\/blob"\)/);
  t.same(staging(), []);
});

t.test('rmi removes the files', async (t) => {
  for (const img of listImages({ root })) await removeImage(img.id, { root });
  t.same(readdirSync(join(root, 'images')), []);
});
