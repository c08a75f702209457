import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { BUSYBOX_PASSWD, busyboxLayout } from '../../src/poc/images/busybox.js';
import {
  BootstrapProgress,
  bootstrapCommand,
  parseDeb822Sources,
  parseSourcesList,
  pickMirror,
} from '../../src/poc/images/debian.js';
import {
  archiveKind,
  blobPath,
  detectCompression,
  imageConfigFrom,
  imageNameFromFile,
  imageNameFromReference,
  planDockerArchive,
  planOciLayout,
} from '../../src/poc/images/import.js';
import { buildBusyboxImage, importImage, listImages, removeImage, resolveImage } from '../../src/poc/images/index.js';
import { buildTar } from '../../src/poc/images/tar.js';

const work = mkdtempSync(join(tmpdir(), 'poc-images-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));

t.test('apt sources: one-line and deb822 formats', async (t) => {
  const oneLine = parseSourcesList(
    [
      '# comment',
      'deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.example/debian bookworm main contrib',
      'deb-src http://mirror.example/debian bookworm main',
      'deb http://security.example/debian-security bookworm-security main # trailing',
      '',
    ].join('\n'),
  );
  t.same(oneLine[0], { types: ['deb'], uris: ['http://mirror.example/debian'], suites: ['bookworm'], components: ['main', 'contrib'], signedBy: '/usr/share/keyrings/x.gpg' });
  t.equal(oneLine.length, 3);
  const deb822 = parseDeb822Sources(
    [
      'Types: deb',
      '# http://snapshot.example/archive',
      'URIs: http://deb.debian.org/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
      '',
      'Types: deb',
      'URIs: http://deb.debian.org/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      '',
      'Types: deb',
      'URIs: http://disabled.example/debian',
      'Suites: sid',
      'Enabled: no',
    ].join('\n'),
  );
  t.equal(deb822.length, 2, 'the disabled stanza is skipped');
  t.same(deb822[0], {
    types: ['deb'],
    uris: ['http://deb.debian.org/debian'],
    suites: ['bookworm', 'bookworm-updates'],
    components: ['main'],
    signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
  });
});

t.test('the mirror is the distribution release suite, not updates, security or a third party', async (t) => {
  const sources = [
    ...parseSourcesList('deb https://deb.nodesource.example/node_20.x nodistro main\n'),
    ...parseDeb822Sources('Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n'),
    ...parseDeb822Sources('Types: deb\nURIs: http://deb.debian.org/debian/\nSuites: bookworm-updates bookworm\nComponents: main\nSigned-By: /k.gpg\n'),
  ];
  t.same(pickMirror(sources), { mirror: 'http://deb.debian.org/debian', suite: 'bookworm', components: ['main'], keyring: '/k.gpg' });
  t.throws(() => pickMirror(parseSourcesList('deb-src http://x/debian bookworm main\n')), /no Debian mirror found/);
});

t.test('debootstrap and mmdebstrap command lines', async (t) => {
  const mirror = { mirror: 'http://deb.debian.org/debian', suite: 'bookworm', components: ['main'], keyring: '/k.gpg' };
  t.same(bootstrapCommand({ tool: 'debootstrap', target: '/r', mirror, arch: 'amd64' }), {
    cmd: 'debootstrap',
    args: ['--variant=minbase', '--include=sysbench,python3,iputils-ping,iproute2', '--components=main', '--arch=amd64', '--keyring=/k.gpg', 'bookworm', '/r', 'http://deb.debian.org/debian'],
  });
  const mm = bootstrapCommand({ tool: 'mmdebstrap', target: '/r', mirror: { ...mirror, keyring: undefined as unknown as string }, packages: ['python3'] });
  t.equal(mm.cmd, 'mmdebstrap');
  t.same(mm.args.slice(-3), ['bookworm', '/r', 'http://deb.debian.org/debian']);
  t.ok(mm.args.includes('--include=python3'));
});

t.test('debootstrap output becomes a package counter', async (t) => {
  const p = new BootstrapProgress();
  const lines = [
    'I: Retrieving InRelease ',
    'I: Retrieving Packages ',
    'I: Retrieving libc6 2.36-9',
    'I: Validating libc6 2.36-9',
    'I: Retrieving bash 5.2.15-2',
    'I: Extracting libc6...',
    'I: Unpacking required packages...',
    'I: Unpacking bash...',
    'I: Configuring bash...',
    'random noise',
  ];
  const events = lines.map((l) => p.line(l));
  t.same(
    events.map((e) => e && [e.phase, e.done, e.total, e.package]),
    [
      ['resolve', 0, undefined, undefined],
      ['resolve', 0, undefined, undefined],
      ['retrieve', 1, undefined, 'libc6'],
      null,
      ['retrieve', 2, undefined, 'bash'],
      ['extract', 1, 2, 'libc6'],
      ['resolve', 0, undefined, undefined],
      ['unpack', 1, 2, 'bash'],
      ['configure', 1, 2, 'bash'],
      null,
    ],
  );
});

t.test('image names from references and files', async (t) => {
  const refs: Array<[string | undefined, string | null]> = [
    ['docker.io/library/busybox:latest', 'busybox'],
    ['busybox:1.36', 'busybox:1.36'],
    ['ghcr.io/owner/tool:v1', 'owner/tool:v1'],
    ['localhost:5000/app', 'app'],
    ['Bad Name', null],
    [undefined, null],
  ];
  for (const [ref, want] of refs) t.equal(imageNameFromReference(ref), want, String(ref));
  t.equal(imageNameFromFile('/tmp/Alpine-MiniRootFS-3.20.tar.gz'), 'alpine-minirootfs-3.20');
  t.equal(imageNameFromFile('/x/rootfs.tar'), 'rootfs');
});

t.test('digests become blob paths only when well-formed', async (t) => {
  const hex = 'a'.repeat(64);
  t.equal(blobPath(`sha256:${hex}`), `blobs/sha256/${hex}`);
  for (const bad of ['sha256:../../etc/passwd', `md5:${hex}`, 'sha256:abc', `sha512:${hex}`, 42]) {
    t.throws(() => blobPath(bad), /invalid digest/, String(bad));
  }
});

t.test('compression is detected from the content', async (t) => {
  t.equal(detectCompression(gzipSync(Buffer.from('x'))), 'gzip');
  t.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0])), 'zstd');
  t.equal(detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0, 0, 0])), 'xz');
  t.equal(detectCompression(Buffer.from('BZh91AY&')), 'bzip2');
  t.equal(detectCompression(buildTar([{ name: 'a' }])), 'none');
});

t.test('the image config keeps Env, Cmd, Entrypoint, WorkingDir and User', async (t) => {
  t.same(imageConfigFrom({ Env: ['A=1'], Cmd: ['run'], Entrypoint: ['/init'], WorkingDir: '/srv', User: '1000:1000', Labels: { a: 'b' }, Junk: 1 }), {
    Env: ['A=1'],
    Cmd: ['run'],
    Entrypoint: ['/init'],
    WorkingDir: '/srv',
    User: '1000:1000',
    Labels: { a: 'b' },
  });
  t.same(imageConfigFrom(undefined), { Env: [], Cmd: null, Entrypoint: null, WorkingDir: '/', User: '' });
});

/** An in-memory archive directory for the planners. */
function fakeDir(files: Record<string, unknown>) {
  return {
    exists: (p: string) => p in files,
    readJson: (p: string) => {
      if (!(p in files)) throw new Error(`missing ${p}`);
      return files[p];
    },
  };
}

t.test('docker save archives: manifest.json, config and layers in order', async (t) => {
  const cfgHex = 'c'.repeat(64);
  const d = fakeDir({
    'manifest.json': [
      { Config: `${cfgHex}.json`, RepoTags: ['docker.io/library/app:1'], Layers: ['l1/layer.tar', 'l2/layer.tar'] },
      { Config: 'other.json', RepoTags: ['other:2'], Layers: ['l3/layer.tar'] },
    ],
    [`${cfgHex}.json`]: { architecture: 'amd64', config: { Cmd: ['app'], Env: ['X=1'] } },
    'other.json': { config: { Cmd: ['other'] } },
  });
  t.equal(archiveKind(d.exists, d.readJson), 'docker-archive');
  const plan = planDockerArchive(d.readJson);
  t.same(plan.layers, [{ path: 'l1/layer.tar' }, { path: 'l2/layer.tar' }]);
  t.equal(plan.name, 'app:1');
  t.equal(plan.digest, `sha256:${cfgHex}`);
  t.same(plan.config.Cmd, ['app']);
  t.same(planDockerArchive(d.readJson, 'other:2').config.Cmd, ['other'], 'the image asked for by name');
  const evil = fakeDir({ 'manifest.json': [{ Config: '../../etc/x.json', Layers: [] }] });
  t.throws(() => planDockerArchive(evil.readJson), /invalid path "\.\.\/\.\.\/etc\/x\.json" in archive manifest/);
});

t.test('OCI layouts: index → platform index → manifest → config and layers', async (t) => {
  const h = (c: string) => `sha256:${c.repeat(64)}`;
  const d = fakeDir({
    'oci-layout': { imageLayoutVersion: '1.0.0' },
    'index.json': { manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: h('1'), annotations: { 'org.opencontainers.image.ref.name': 'docker.io/library/web:2' } }] },
    [blobPath(h('1'))]: {
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: h('2'), platform: { os: 'linux', architecture: 'arm64' } },
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: h('3'), platform: { os: 'linux', architecture: 'amd64' } },
      ],
    },
    [blobPath(h('3'))]: { config: { digest: h('4') }, layers: [{ digest: h('5') }, { digest: h('6') }] },
    [blobPath(h('4'))]: { architecture: 'amd64', config: { Entrypoint: ['/web'], WorkingDir: '/srv' } },
  });
  t.equal(archiveKind(d.exists, d.readJson), 'oci-layout');
  const plan = planOciLayout(d.readJson, undefined, 'amd64');
  t.same(plan.layers.map((l) => l.path), [blobPath(h('5')), blobPath(h('6'))]);
  t.equal(plan.name, 'web:2');
  t.same(plan.config.Entrypoint, ['/web']);
  t.equal(plan.digest, h('4'));
  t.throws(() => planOciLayout(d.readJson, undefined, 's390x'), /no linux\/s390x image in the index \(it has linux\/arm64, linux\/amd64\)/);
});

t.test('busybox layout: applets linked to /bin/busybox, users, mount points', async (t) => {
  const l = busyboxLayout(['sh', 'ls', 'busybox', '../evil', '[', '[[']);
  t.same(l.links.filter(([p]) => p.startsWith('bin/')).map(([p]) => p), ['bin/sh', 'bin/ls', 'bin/[', 'bin/[['], 'odd names are skipped, "[" kept');
  t.ok(l.dirs.some(([d, m]) => d === 'tmp' && m === 0o1777));
  for (const d of ['proc', 'sys', 'dev']) t.ok(l.dirs.some(([x]) => x === d), d);
  t.match(BUSYBOX_PASSWD, /^root:x:0:0:/m);
  t.match(BUSYBOX_PASSWD, /^user:x:1000:1000:/m);
  t.match(BUSYBOX_PASSWD, /^nobody:x:65534:65534:/m);
  t.ok(l.files.some(([p]) => p === 'etc/hosts'));
});

t.test('the image store: build, import, list, resolve, remove (no root needed)', async (t) => {
  const root = join(work, 'store');
  const started = Date.now();
  const bb = await buildBusyboxImage({ root });
  t.ok(Date.now() - started < 5000, 'busybox image built in seconds');
  t.equal(bb.name, 'busybox');
  t.same(bb.config.Cmd, ['sh']);
  const rootfs = join(root, 'images', bb.id, 'rootfs');
  t.equal(readlinkSync(join(rootfs, 'bin/sh')), 'busybox');
  t.ok(lstatSync(join(rootfs, 'usr/bin')).isSymbolicLink());
  t.equal((await buildBusyboxImage({ root })).id, bb.id, 'reused unless force');
  const rebuilt = await buildBusyboxImage({ root, force: true });
  t.not(rebuilt.id, bb.id, 'force rebuilds');
  t.notOk(existsSync(join(root, 'images', bb.id)), 'the replaced image is gone');

  const tarball = join(work, 'app.tar.gz');
  writeFileSync(tarball, gzipSync(buildTar([{ name: './', type: 'dir' }, { name: './etc/', type: 'dir' }, { name: './etc/motd', data: 'hi' }])));
  const app = await importImage(tarball, undefined, { root });
  t.equal(app.name, 'app', 'named after the file');
  t.equal(app.source.kind, 'tarball');
  t.equal(readFileSync(join(root, 'images', app.id, 'rootfs/etc/motd'), 'utf8'), 'hi');
  await t.rejects(importImage(tarball, undefined, { root }), /image name "app" is already in use/);
  t.same(listImages({ root }).map((i) => i.name).sort(), ['app', 'busybox']);
  t.equal(resolveImage(app.id.slice(0, 6), { root }).id, app.id, 'unique id prefix');
  t.throws(() => resolveImage('nope', { root }), /no such image: nope/);

  await t.rejects(removeImage('app', { root, inUse: () => ['c1'] }), /image app is in use by container c1 \(remove it first, or use -f\)/);
  t.same(await removeImage('app', { root, force: true, inUse: () => ['c1'] }), { id: app.id, action: 'untagged' });
  t.equal(resolveImage(app.id, { root }).name, null, 'kept, without a name, while in use');
  t.same(await removeImage(app.id, { root }), { id: app.id, action: 'deleted' });
  t.same(readdirSync(join(root, 'images')).filter((n) => n.startsWith('.')), [], 'no staging directory left');
});

t.test('import of a docker save archive and an OCI layout, with layers and whiteouts', async (t) => {
  const root = join(work, 'store2');
  const l1 = buildTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/a', data: 'a' }, { name: 'etc/b', data: 'b' }, { name: 'opt/', type: 'dir' }, { name: 'opt/x', data: 'x' }]);
  const l2 = gzipSync(buildTar([{ name: 'etc/.wh.a' }, { name: 'opt/.wh..wh..opq' }, { name: 'opt/y', data: 'y' }]));
  const config = { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/app'], Env: ['A=1'], WorkingDir: '/opt', User: 'nobody' } };
  const docker = buildTar([
    { name: 'manifest.json', data: JSON.stringify([{ Config: 'config.json', RepoTags: ['demo:1'], Layers: ['l1/layer.tar', 'l2/layer.tar'] }]) },
    { name: 'config.json', data: JSON.stringify(config) },
    { name: 'l1/', type: 'dir' },
    { name: 'l1/layer.tar', data: l1 },
    { name: 'l2/', type: 'dir' },
    { name: 'l2/layer.tar', data: l2 },
  ]);
  const dockerFile = join(work, 'demo-save.tar');
  writeFileSync(dockerFile, docker);
  const img = await importImage(dockerFile, undefined, { root });
  t.equal(img.name, 'demo:1');
  t.equal(img.source.kind, 'docker-archive');
  t.same(img.config, { Env: ['A=1'], Cmd: ['/bin/app'], Entrypoint: null, WorkingDir: '/opt', User: 'nobody' });
  const r = join(root, 'images', img.id, 'rootfs');
  t.same(readdirSync(r).sort(), ['etc', 'opt'], 'the archive itself is not in the rootfs');
  t.same(readdirSync(join(r, 'etc')), ['b']);
  t.same(readdirSync(join(r, 'opt')), ['y']);

  // The same image as an OCI layout directory.
  const oci = join(work, 'oci');
  const blob = (data: Buffer | string) => {
    const buf = Buffer.from(data);
    const hex = createHash('sha256').update(buf).digest('hex');
    mkdirSync(join(oci, 'blobs/sha256'), { recursive: true });
    writeFileSync(join(oci, 'blobs/sha256', hex), buf);
    return { digest: `sha256:${hex}`, size: buf.length };
  };
  const manifest = blob(JSON.stringify({ schemaVersion: 2, config: blob(JSON.stringify(config)), layers: [blob(l1), blob(l2)] }));
  writeFileSync(join(oci, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(oci, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest }] }));
  const o = await importImage(oci, 'demo-oci', { root });
  t.equal(o.source.kind, 'oci-layout');
  t.same(readdirSync(join(root, 'images', o.id, 'rootfs/opt')), ['y']);
  t.match(o.digest, /^sha256:/);

  // A layer that does not match its digest is refused, and nothing is left behind.
  const tampered = readdirSync(join(oci, 'blobs/sha256')).find((f) => readFileSync(join(oci, 'blobs/sha256', f))[0] === 0x1f)!;
  writeFileSync(join(oci, 'blobs/sha256', tampered), gzipSync(buildTar([{ name: 'evil', data: 'x' }])));
  await t.rejects(importImage(oci, 'tampered', { root }), /does not match its digest/);
  t.same(readdirSync(join(root, 'images')).filter((n) => n.startsWith('.')), []);
  t.throws(() => resolveImage('tampered', { root }));

  await t.rejects(importImage(work, 'x', { root }), /not an image archive/);
  await t.rejects(importImage(join(work, 'missing.tar'), 'x', { root }), /import .*missing\.tar: No such file or directory/);
  await t.rejects(importImage(dockerFile, 'Bad Name', { root }), /invalid image name "Bad Name"/);
});

t.test('a failed import leaves nothing behind', async (t) => {
  const root = join(work, 'store3');
  const cases: Array<[string, Buffer, RegExp]> = [
    ['truncated gzip', gzipSync(buildTar([{ name: 'a', data: randomBytes(50000) }])).subarray(0, 20000), /truncated or damaged gzip data/],
    ['truncated tar', buildTar([{ name: 'a', data: 'x'.repeat(5000) }]).subarray(0, 3000), /truncated tar archive/],
    ['path traversal', buildTar([{ name: 'ok', data: 'x' }, { name: '../../../../tmp/poc-pwned', data: 'x' }]), /"\.\.\/\.\.\/\.\.\/\.\.\/tmp\/poc-pwned": "\.\." in path refused/],
  ];
  for (const [what, buf, message] of cases) {
    const f = join(work, `${what.replace(/ /g, '-')}.tar`);
    writeFileSync(f, buf);
    await t.rejects(importImage(f, 'broken', { root }), { name: 'PocError', message }, what);
  }
  t.same(readdirSync(join(root, 'images')), [], 'no image and no staging directory');
  t.notOk(existsSync('/tmp/poc-pwned'));
});
