/**
 * The pure parts of poc's registry client: references, registries.conf, auth files, auth challenges, manifests
 * and platform choice, progress lines. The protocol itself is tested against real registries in
 * test/integration/poc-registry.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { checkName } from '../../src/poc/poc-root.js';
import { formatReference, parseReference, qualify, storeName } from '../../src/poc/registry/reference.js';
import {
  authFiles,
  candidates,
  credentialsIn,
  loadCredentials,
  normalizeAuthKey,
  parseRegistriesConf,
  removeCredentials,
  rewrite,
  pullSources,
  saveCredentials,
  isInsecure,
  credentialHelper,
} from '../../src/poc/registry/config.js';
import { parseChallenge, registryErrorText } from '../../src/poc/registry/client.js';
import { MEDIA, choosePlatform, diffIds, hostPlatform, parseManifest } from '../../src/poc/registry/manifest.js';
import { progressLine } from '../../src/poc/registry/progress.js';

const work = mkdtempSync(join(tmpdir(), 'poc-registry-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const D = `sha256:${'a'.repeat(64)}`;

t.test('references parse as docker parses them', async (t) => {
  const cases: Array<[string, object]> = [
    ['busybox', { repository: 'busybox' }],
    ['library/debian:bookworm', { repository: 'library/debian', tag: 'bookworm' }],
    ['localhost/app', { registry: 'localhost', repository: 'app' }],
    ['127.0.0.1:5000/team/app:v1.2', { registry: '127.0.0.1:5000', repository: 'team/app', tag: 'v1.2' }],
    [`reg.example/app@${D}`, { registry: 'reg.example', repository: 'app', digest: D }],
    [`reg.example:443/a/b:t@${D}`, { registry: 'reg.example:443', repository: 'a/b', tag: 't', digest: D }],
  ];
  for (const [text, want] of cases) t.same(parseReference(text), want, text);
  const bad: Array<[string, RegExp]> = [
    ['', /it is empty/],
    ['Busybox', /repository name is lower-case/],
    ['a/../b', /repository name/],
    ['app:bad tag', /not a tag/],
    ['app@sha256:abc', /not a digest/],
    ['reg_x.example/app', /not a registry host/],
  ];
  for (const [text, re] of bad) t.throws(() => parseReference(text), re, JSON.stringify(text));
});

t.test('qualified names, store names and formatting', async (t) => {
  t.same(qualify(parseReference('debian'), 'docker.io'), { registry: 'docker.io', repository: 'library/debian' });
  t.same(qualify(parseReference('team/app'), 'index.docker.io'), { registry: 'docker.io', repository: 'team/app' });
  const cases: Array<[string, string, string]> = [
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app', '127.0.0.1:5000/app:latest'],
    ['127.0.0.1:5000/app:latest', '127.0.0.1:5000/app', '127.0.0.1:5000/app:latest'],
    ['127.0.0.1:5000/a/b:v1', '127.0.0.1:5000/a/b:v1', '127.0.0.1:5000/a/b:v1'],
    [`reg.example/app@${D}`, `reg.example/app@${D}`, `reg.example/app@${D}`],
    ['docker.io/library/debian:12', 'debian:12', 'docker.io/library/debian:12'],
  ];
  for (const [text, name, full] of cases) {
    const q = qualify(parseReference(text), parseReference(text).registry!);
    t.equal(storeName(q), name, `store name of ${text}`);
    t.equal(checkName('image', storeName(q)), name, `${name} is a valid image name`);
    t.equal(formatReference(q), full, `full reference of ${text}`);
  }
});

const CONF = `
unqualified-search-registries = ["127.0.0.1:5001", "127.0.0.1:5002"]

[[registry]]
location = "127.0.0.1:5002"
insecure = true

[[registry]]
prefix = "mirror.example/team"
location = "127.0.0.1:5003/copy"

[[registry]]
location = "blocked.example"
blocked = true

[[registry]]
prefix = "*.internal.example"
insecure = true

[aliases]
"tool" = "127.0.0.1:5001/tools/tool"
`;

t.test('registries.conf: search list, aliases, insecure, blocked, prefix rewrites', async (t) => {
  const conf = parseRegistriesConf(CONF, 'test.conf');
  t.same(candidates(parseReference('app:v1'), conf).map(formatReference), ['127.0.0.1:5001/app:v1', '127.0.0.1:5002/app:v1']);
  t.same(candidates(parseReference('tool:2'), conf).map(formatReference), ['127.0.0.1:5001/tools/tool:2'], 'an alias keeps the tag');
  t.same(candidates(parseReference('10.0.0.1:5000/x'), conf).map(formatReference), ['10.0.0.1:5000/x:latest'], 'a qualified name is itself');
  t.same(candidates(parseReference('app'), parseRegistriesConf('', 'empty')), [], 'no search registries: nothing to try (never docker.io)');
  t.equal(isInsecure(conf, '127.0.0.1:5002'), true);
  t.equal(isInsecure(conf, '127.0.0.1:5001'), false);
  t.equal(isInsecure(conf, 'a.internal.example:5000'), true, 'wildcard prefix');
  const moved = rewrite(conf, qualify(parseReference('mirror.example/team/app:1'), 'mirror.example'));
  t.same(moved.ref, { registry: '127.0.0.1:5003', repository: 'copy/app', tag: '1' });
  t.throws(() => rewrite(conf, qualify(parseReference('blocked.example/x'), 'blocked.example')), /registry blocked\.example is blocked in test\.conf/);
  const v1 = parseRegistriesConf('[registries.search]\nregistries = ["a.example"]\n[registries.insecure]\nregistries = ["b.example:5000"]\n', 'v1.conf');
  t.same(v1.search, ['a.example']);
  t.equal(isInsecure(v1, 'b.example:5000'), true);
  t.throws(() => parseRegistriesConf('unqualified-search-registries = [', 'broken.conf'), /broken\.conf: invalid TOML/);
  t.throws(() => parseRegistriesConf('unqualified-search-registries = "x"', 'bad.conf'), /bad\.conf: unqualified-search-registries: expected a list of strings/);
});

t.test('registries.conf mirrors: which sources a pull tries, in order', async (t) => {
  const conf = parseRegistriesConf(
    [
      '[[registry]]', 'prefix = "example.com/foo"', 'location = "real.example/bar"',
      '[[registry.mirror]]', 'location = "m1.example/mirror-of-foo"', 'insecure = true',
      '[[registry.mirror]]', 'location = "m2.example"', 'pull-from-mirror = "digest-only"',
      '[[registry.mirror]]', 'location = "m3.example"', 'pull-from-mirror = "tag-only"',
      '[[registry]]', 'location = "old.example"', 'mirror-by-digest-only = true',
      '[[registry.mirror]]', 'location = "m4.example"',
      '[[registry]]', 'prefix = "*.wild.example"',
      '[[registry.mirror]]', 'location = "m5.example"',
    ].join('\n'),
    'mirrors.conf',
  );
  const sources = (text: string) => {
    const r = parseReference(text);
    return pullSources(conf, qualify(r, r.registry!)).map((s) => `${formatReference(s.ref)}${s.insecure ? ' insecure' : ''}${s.mirror ? ' mirror' : ''}`);
  };
  const digest = `sha256:${'a'.repeat(64)}`;
  t.same(sources('example.com/foo/app:1'), ['m1.example/mirror-of-foo/app:1 insecure mirror', 'm3.example/app:1 mirror', 'real.example/bar/app:1'], 'by tag: all and tag-only mirrors, then the location');
  t.same(sources(`example.com/foo/app@${digest}`), [`m1.example/mirror-of-foo/app@${digest} insecure mirror`, `m2.example/app@${digest} mirror`, `real.example/bar/app@${digest}`], 'by digest: all and digest-only');
  t.same(sources('old.example/x:1'), ['old.example/x:1'], 'mirror-by-digest-only: a tag goes to the location alone');
  t.same(sources(`old.example/x@${digest}`), [`m4.example/x@${digest} mirror`, `old.example/x@${digest}`]);
  t.same(sources('a.wild.example/p/q:1'), ['m5.example/p/q:1 mirror', 'a.wild.example/p/q:1'], 'a wildcard prefix: the host is replaced');
  t.same(sources('elsewhere.example/x:1'), ['elsewhere.example/x:1'], 'no entry: the registry itself');
  t.throws(() => parseRegistriesConf('[[registry]]\nlocation = "r"\n[[registry.mirror]]\nlocation = "m"\npull-from-mirror = "some"\n', 'bad.conf'), /bad\.conf: registry\[0\]\.mirror\[0\]: pull-from-mirror is "some"; it must be "all", "digest-only" or "tag-only"/);
  t.throws(() => parseRegistriesConf('[[registry]]\nlocation = "r"\n[[registry.mirror]]\ninsecure = true\n', 'bad.conf'), /bad\.conf: registry\[0\]\.mirror\[0\]: needs a location/);
});

t.test('auth files: where they are, which key matches, login and logout', async (t) => {
  t.same(authFiles(undefined, { HOME: '/h', XDG_RUNTIME_DIR: '/run/user/7' }, 7), {
    read: ['/run/user/7/containers/auth.json', '/h/.config/containers/auth.json', '/h/.docker/config.json'],
    write: '/run/user/7/containers/auth.json',
  });
  t.same(authFiles(undefined, { HOME: '/root' }, 0).write, '/run/containers/0/auth.json', 'podman\'s default for root');
  t.same(authFiles(undefined, { HOME: '/h', REGISTRY_AUTH_FILE: '/a.json' }), { read: ['/a.json'], write: '/a.json' });
  t.same(authFiles('/b.json', { REGISTRY_AUTH_FILE: '/a.json' }), { read: ['/b.json'], write: '/b.json' }, '--authfile wins');
  for (const [k, want] of [['https://index.docker.io/v1/', 'docker.io'], ['https://reg:5000', 'reg:5000'], ['reg:5000/', 'reg:5000'], ['http://reg/v2/', 'reg']]) {
    t.equal(normalizeAuthKey(k!), want, k);
  }
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const doc = {
    auths: {
      'https://reg:5000': { auth: b64('alice:pa:ss') },
      'reg:5000/team': { auth: b64('bob:secret') },
      'other.example': { username: 'carol', password: 'pw' },
    },
  };
  t.same(credentialsIn(doc, 'reg:5000', 'app'), { username: 'alice', password: 'pa:ss' }, 'the password may hold a colon');
  t.same(credentialsIn(doc, 'reg:5000', 'team/app'), { username: 'bob', password: 'secret' }, 'the most specific key first');
  t.same(credentialsIn(doc, 'other.example'), { username: 'carol', password: 'pw' });
  t.equal(credentialsIn(doc, 'nowhere.example'), undefined);
  t.throws(() => credentialsIn({ auths: { r: { auth: b64('nocolon') } } }, 'r', '', 'f.json'), /f\.json: the "auth" of r is not base64 of user:password/);
  t.same(credentialsIn({ auths: { r: { auth: b64('frank:'), identitytoken: 'rt' } } }, 'r'), { username: 'frank', password: '', identityToken: 'rt' }, "docker's identitytoken, the user name beside it");
  t.same(credentialsIn({ auths: { r: { identitytoken: 'rt' } } }, 'r'), { username: '', password: '', identityToken: 'rt' }, 'an identitytoken alone');

  const file = join(work, 'sub', 'auth.json');
  const docker = join(work, 'docker.json');
  writeFileSync(docker, JSON.stringify({ auths: { 'reg:5000': { auth: b64('dan:d') } }, credsStore: 'kept' }));
  saveCredentials(file, 'reg:5000', { username: 'eve', password: 'e' });
  t.equal(statSync(file).mode & 0o777, 0o600, 'the auth file is private');
  t.same(loadCredentials({ read: [file, docker], write: file }, 'reg:5000'), { username: 'eve', password: 'e', file }, 'the first file that has it');
  t.equal(removeCredentials(file, 'reg:5000'), true);
  t.equal(removeCredentials(file, 'reg:5000'), false);
  t.same(loadCredentials({ read: [file, docker], write: file }, 'reg:5000'), { username: 'dan', password: 'd', file: docker }, 'then ~/.docker/config.json');
  t.match(JSON.parse(readFileSync(docker, 'utf8')), { credsStore: 'kept' }, 'other files are not touched');
});

t.test('credential helpers: credHelpers for its registry, else credsStore', async (t) => {
  t.equal(credentialHelper({ credHelpers: { 'https://reg:5000': 'ecr' }, credsStore: 'desktop' }, 'reg:5000'), 'ecr');
  t.equal(credentialHelper({ credHelpers: { 'reg:5000': 'ecr' }, credsStore: 'desktop' }, 'other.example'), 'desktop');
  t.equal(credentialHelper({ auths: {} }, 'reg:5000'), undefined);
});

t.test('WWW-Authenticate challenges and registry errors', async (t) => {
  t.same(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
  });
  t.same(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
  t.same(parseChallenge('basic realm=plain'), { scheme: 'basic', params: { realm: 'plain' } });
  t.equal(parseChallenge('Negotiate abc'), null);
  t.equal(parseChallenge(null), null);
  t.equal(registryErrorText(404, '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'), 'MANIFEST_UNKNOWN: manifest unknown');
  t.equal(registryErrorText(502, '<html>bad gateway</html>'), 'HTTP 502: <html>bad gateway</html>');
});

t.test('manifests: kinds, checks, platform choice', async (t) => {
  const layer = { mediaType: MEDIA.ociLayerGzip, digest: D, size: 10 };
  const manifest = { schemaVersion: 2, mediaType: MEDIA.ociManifest, config: { mediaType: MEDIA.ociConfig, digest: D, size: 2 }, layers: [layer] };
  t.match(parseManifest(JSON.stringify(manifest), null, 'm'), { kind: 'manifest', manifest: { layers: [layer] } });
  const docker = { ...manifest, mediaType: MEDIA.dockerManifest, layers: [{ ...layer, mediaType: MEDIA.dockerLayerGzip }] };
  t.match(parseManifest(JSON.stringify(docker), null, 'm'), { kind: 'manifest', manifest: { mediaType: MEDIA.dockerManifest } });
  const noType = { schemaVersion: 2, config: manifest.config, layers: [{ ...layer, mediaType: MEDIA.ociLayerZstd }] };
  t.match(parseManifest(JSON.stringify(noType), `${MEDIA.ociManifest}; charset=utf-8`, 'm'), { kind: 'manifest' }, 'the type from Content-Type');
  t.throws(() => parseManifest('{"schemaVersion":1,"fsLayers":[]}', null, 'old'), /old: Docker schema 1 manifests are not supported/);
  t.throws(() => parseManifest(JSON.stringify({ ...manifest, layers: [{ ...layer, mediaType: MEDIA.dockerForeignLayer }] }), null, 'w'), /foreign layer/);
  t.throws(() => parseManifest(JSON.stringify({ ...manifest, layers: [{ ...layer, digest: 'md5:x' }] }), null, 'm'), /layers\[0\]: unsupported digest/);
  t.throws(() => parseManifest('nope', null, 'm'), /m: the manifest is not valid JSON/);

  const entry = (architecture: string, variant?: string, os = 'linux') => ({ mediaType: MEDIA.ociManifest, digest: `sha256:${architecture[0]!.repeat(64).replace(/[^a-f0-9]/g, 'b')}`, size: 1, platform: { os, architecture, ...(variant ? { variant } : {}) } });
  const index = { schemaVersion: 2 as const, mediaType: MEDIA.ociIndex, manifests: [entry('unknown', undefined, 'unknown'), entry('arm', 'v6'), entry('arm', 'v7'), entry('arm64', 'v8'), entry('amd64')] };
  t.equal(choosePlatform(index, { os: 'linux', architecture: 'amd64' }, 'i').platform!.architecture, 'amd64');
  t.equal(choosePlatform(index, { os: 'linux', architecture: 'arm', variant: 'v7' }, 'i').platform!.variant, 'v7');
  t.equal(choosePlatform(index, hostPlatform('arm64'), 'i').platform!.architecture, 'arm64');
  t.throws(() => choosePlatform(index, { os: 'linux', architecture: 's390x' }, 'img'), /img: no image for linux\/s390x \(it has linux\/arm\/v6, linux\/arm\/v7, linux\/arm64\/v8, linux\/amd64\)/);
  t.same(parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.dockerList, manifests: [entry('amd64')] }), null, 'l').kind, 'index');
  t.same(diffIds({ rootfs: { diff_ids: [D] } }, 1, 'c'), [D]);
  t.throws(() => diffIds({ rootfs: { diff_ids: [D] } }, 2, 'c'), /c: the config lists 1 layers and the manifest 2/);
});

t.test('progress lines', async (t) => {
  t.equal(progressLine(D, 'waiting'), 'aaaaaaaaaaaa: Waiting');
  t.equal(progressLine(D, 'downloading', 5_000_000, 10_000_000, 10), 'aaaaaaaaaaaa: Downloading [====>     ] 5.0MB/10.0MB');
  t.equal(progressLine(D, 'done'), 'aaaaaaaaaaaa: Pull complete');
});
