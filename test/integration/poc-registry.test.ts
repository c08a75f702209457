/**
 * poc pull, push, login and logout against real registries the test starts on 127.0.0.1 (Debian's
 * docker-registry): one with htpasswd auth and TLS from a CA made here, one plain HTTP marked insecure in the
 * test's registries.conf. Interop both ways with skopeo and podman (a private store); bad input (an unknown
 * image, a wrong password, a corrupt blob, a registry that dies mid-pull) fails clearly and leaves the store as
 * it was. Nothing outside the machine is contacted: registries.conf, the auth file and HOME are the test's.
 */
import { execFileSync, spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort, makeCertificates, startDyingProxy, startRegistry, startTokenServer, type Registry } from '../helpers/registry.js';
import { top } from '../helpers/runtime.js';
import { pruneImages } from '../../src/poc/images/image-store.js';

if (process.getuid?.() !== 0) {
  t.fail('poc-registry: needs root (images keep owners; containers run)');
  process.exit(1);
}
for (const tool of ['docker-registry', 'htpasswd', 'openssl', 'skopeo', 'podman']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    t.fail(`${tool} is not installed (scripts/setup.sh installs it)`);
    process.exit(1);
  }
}

const POC = join(top, 'dist/poc');
const work = mkdtempSync(join(tmpdir(), 'poc-registry-it-'));
const root = join(work, 'poc');
const certs = join(work, 'certs');
const authFile = join(work, 'auth.json');
const confFile = join(work, 'registries.conf');
const registries: Registry[] = [];
t.teardown(async () => {
  for (const r of registries) await r.stop();
  rmSync(work, { recursive: true, force: true });
});

makeCertificates(certs);
// The client's certs.d directory: only the CA.
const certDir = join(work, 'certs.d');
mkdirSync(certDir);
writeFileSync(join(certDir, 'ca.crt'), readFileSync(join(certs, 'ca.crt')));
writeFileSync(join(work, 'htpasswd'), execFileSync('htpasswd', ['-Bbn', 'alice', 's3cret'], { encoding: 'utf8' }));

const secure = await startRegistry(join(work, 'secure'), { htpasswd: join(work, 'htpasswd'), tls: certs });
const plain = await startRegistry(join(work, 'plain'));
const tokens = await startTokenServer(join(work, 'token'), 'bob', 't0ken-pw', 'refresh-4b1d');
const tokenReg = await startRegistry(join(work, 'tokenreg'), { token: tokens });
registries.push(secure, plain, tokenReg);
t.teardown(() => tokens.stop());
writeFileSync(
  confFile,
  `unqualified-search-registries = ["${plain.host}"]\n\n[[registry]]\nlocation = "${plain.host}"\ninsecure = true\n\n` +
    `[[registry]]\nlocation = "${tokenReg.host}"\ninsecure = true\n`,
);

/** Everything a user's configuration could point at is the test's own; HOME too (~/.docker/config.json). */
const home = join(work, 'home');
mkdirSync(home);
const env: NodeJS.ProcessEnv = {
  ...process.env,
  POC_ROOT: root,
  CONTAINERS_REGISTRIES_CONF: confFile,
  REGISTRY_AUTH_FILE: authFile,
  HOME: home,
  XDG_RUNTIME_DIR: join(work, 'xdg'),
};

interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}
function poc(args: string[], opts: SpawnSyncOptions & { env?: NodeJS.ProcessEnv } = {}): Result {
  const r = spawnSync(POC, args, { encoding: 'utf8', timeout: 120_000, ...opts, env: opts.env ?? env });
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}
/** For a poc that talks to a server in this process (spawnSync would stop its event loop). */
function pocAsync(args: string[], e: NodeJS.ProcessEnv): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(POC, args, { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
const tls = ['--cert-dir', certDir];

/** What a failed pull must not leave: an image, a staging directory, a partial blob. */
function storeLitter(): string[] {
  const out: string[] = [];
  for (const sub of ['images', 'blobs/sha256']) {
    const dir = join(root, sub);
    if (!existsSync(dir)) continue;
    for (const n of readdirSync(dir)) if (n.startsWith('.tmp-')) out.push(`${sub}/${n}`);
  }
  return out;
}
const imageNames = () => (JSON.parse(poc(['images', '--format', 'json']).stdout) as Array<{ name: string }>).map((i) => i.name).sort();

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

t.test('login: a wrong password is refused and nothing is stored; the right one is stored', async (t) => {
  let r = poc(['login', ...tls, '-u', 'alice', '-p', 'wrong', secure.host]);
  t.equal(r.status, 1);
  t.match(r.stderr, /^poc: login to 127\.0\.0\.1:\d+: wrong username or password/);
  t.notOk(existsSync(authFile), 'no auth file written');
  r = poc(['login', ...tls, '-u', 'alice', '--password-stdin', secure.host], { input: 's3cret\n' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /Login Succeeded/);
  const auths = JSON.parse(readFileSync(authFile, 'utf8')).auths;
  t.same(auths[secure.host], { auth: Buffer.from('alice:s3cret').toString('base64') });
});

let pushedDigest = '';
t.test('push to the TLS registry with auth; skopeo and podman read it', async (t) => {
  t.equal(poc(['init', '--busybox']).status, 0);
  const r = poc(['push', ...tls, '--chunk-size', '500000', 'busybox', `${secure.host}/team/bb:v1`]);
  t.equal(r.status, 0, r.stderr);
  pushedDigest = r.stdout.trim();
  t.match(pushedDigest, /^sha256:[a-f0-9]{64}$/);
  t.ok(/"PATCH \/v2\/team\/bb\/blobs\/uploads\/[^"]*" 202/.test(secure.log()), 'the layer went up in chunks (PATCH)');
  const inspect = JSON.parse(
    execFileSync('skopeo', ['inspect', '--cert-dir', certDir, '--creds', 'alice:s3cret', `docker://${secure.host}/team/bb:v1`], { encoding: 'utf8' }),
  );
  t.equal(inspect.Digest, pushedDigest, 'skopeo sees the digest poc printed');
  t.equal(inspect.Architecture, 'amd64');
  const pr = join(work, 'podman');
  const podman = spawnSync(
    'podman',
    ['--root', join(pr, 'root'), '--runroot', join(pr, 'run'), '--tmpdir', join(pr, 'tmp'), '--storage-driver', 'vfs', '--events-backend', 'file', '--cgroup-manager', 'cgroupfs',
      'pull', '--cert-dir', certDir, '--creds', 'alice:s3cret', `${secure.host}/team/bb:v1`],
    { encoding: 'utf8', env, timeout: 120_000 },
  );
  t.equal(podman.status, 0, podman.stderr);
  const digest = execFileSync(
    'podman',
    ['--root', join(pr, 'root'), '--runroot', join(pr, 'run'), '--storage-driver', 'vfs', '--events-backend', 'file', '--cgroup-manager', 'cgroupfs',
      'image', 'inspect', '--format', '{{.Digest}}', `${secure.host}/team/bb:v1`],
    { encoding: 'utf8', env },
  ).trim();
  t.equal(digest, pushedDigest, 'podman pulled the same manifest');
  // A built image keeps its layers on the way up.
  const ctx = join(work, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo built > /built\nCOPY hello /hello\n');
  writeFileSync(join(ctx, 'hello'), 'hello from the context\n');
  const b = poc(['build', '--network', 'none', '-t', 'built', ctx]);
  t.equal(b.status, 0, b.stderr);
  const pb = poc(['push', ...tls, 'built', `${secure.host}/team/built:v1`]);
  t.equal(pb.status, 0, pb.stderr);
  const built = JSON.parse(
    execFileSync('skopeo', ['inspect', '--cert-dir', certDir, '--creds', 'alice:s3cret', `docker://${secure.host}/team/built:v1`], { encoding: 'utf8' }),
  );
  t.equal(built.Layers.length, 3, 'the base layer and one per filesystem step');
  // Pushed again: the same bytes (the packed layer was kept), and every blob is already there.
  const again = poc(['push', ...tls, 'busybox', `${secure.host}/team/bb:v1`]);
  t.equal(again.stdout.trim(), pushedDigest, 'a second push is the same image');
});

t.test('pull from the TLS registry with the stored login; run it', async (t) => {
  const r = poc(['pull', ...tls, `${secure.host}/team/bb:v1`]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, new RegExp(`Digest: ${pushedDigest}`));
  t.notMatch(r.stderr, /\x1b\[/, 'no progress bars when stderr is not a terminal');
  const run = poc(['run', '--rm', '--network', 'none', `${secure.host}/team/bb:v1`, 'echo', 'pulled and ran']);
  t.equal(run.stdout, 'pulled and ran\n', run.stderr);
  const up = poc(['pull', ...tls, `${secure.host}/team/bb:v1`]);
  t.match(up.stderr, /Image is up to date/);
});

t.test('a pulled image is pushed as it is: cross-repository mount, same digest', async (t) => {
  const r = poc(['push', ...tls, `${secure.host}/team/bb:v1`, `${secure.host}/other/copy:v1`]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), pushedDigest);
  t.ok(/"POST \/v2\/other\/copy\/blobs\/uploads\/\?mount=sha256%3A[a-f0-9]+&from=team%2Fbb HTTP\/1\.1" 201/.test(secure.log()), 'the layer was mounted, not uploaded');
});

t.test('~/.docker/config.json is read when the containers auth files have nothing', async (t) => {
  const bare = { ...env };
  delete bare.REGISTRY_AUTH_FILE;
  mkdirSync(join(home, '.docker'), { recursive: true });
  const r0 = poc(['pull', ...tls, `${secure.host}/other/copy:v1`], { env: bare });
  t.equal(r0.status, 1);
  t.match(r0.stderr, /requires a login \("poc login 127\.0\.0\.1:\d+"\)/);
  writeFileSync(join(home, '.docker/config.json'), JSON.stringify({ auths: { [`https://${secure.host}`]: { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
  const r = poc(['pull', ...tls, `${secure.host}/other/copy:v1`], { env: bare });
  t.equal(r.status, 0, r.stderr);
  // A credential helper (credsStore): docker-credential-NAME get, the registry on stdin.
  const bin = join(work, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'docker-credential-poctest'), `#!/bin/sh\nread server\n[ "$1" = get ] && [ "$server" = "${secure.host}" ] || { echo "credentials not found in native keychain"; exit 1; }\necho '{"ServerURL":"'$server'","Username":"alice","Secret":"s3cret"}'\n`, { mode: 0o755 });
  writeFileSync(join(home, '.docker/config.json'), JSON.stringify({ credsStore: 'poctest' }));
  const viaHelper = poc(['pull', ...tls, `${secure.host}/other/copy:v1`], { env: { ...bare, PATH: `${bin}:${bare.PATH}` } });
  t.equal(viaHelper.status, 0, viaHelper.stderr);
  writeFileSync(join(home, '.docker/config.json'), JSON.stringify({ credHelpers: { [secure.host]: 'missing' } }));
  const broken = poc(['pull', ...tls, `${secure.host}/other/copy:v1`], { env: bare });
  t.match(broken.stderr, /names the credential helper "missing", but docker-credential-missing cannot run/);
  rmSync(join(home, '.docker'), { recursive: true });
});

/**
 * An OCI layout made here: two layers (the busybox rootfs with /data/{gone,keep}; then a whiteout of gone and
 * a new file), and an index with an arm64 and an amd64 manifest. skopeo copies it to the plain registry with
 * its layers recompressed as zstd.
 */
function makeLayout(dir: string): void {
  const blobs = join(dir, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer) => {
    const d = sha(data);
    writeFileSync(join(blobs, d.slice(7)), data);
    return { digest: d, size: data.length };
  };
  const bbRoot = JSON.parse(poc(['images', '--format', 'json']).stdout).find((i: { name: string }) => i.name === 'busybox').id;
  const l1 = join(work, 'l1');
  const l2 = join(work, 'l2');
  mkdirSync(join(l1, 'data'), { recursive: true });
  mkdirSync(join(l2, 'data'), { recursive: true });
  execFileSync('cp', ['-a', `${join(root, 'images', bbRoot, 'rootfs')}/.`, l1]);
  writeFileSync(join(l1, 'data/gone'), 'old');
  writeFileSync(join(l1, 'data/keep'), 'kept');
  writeFileSync(join(l2, 'data/.wh.gone'), '');
  writeFileSync(join(l2, 'data/new'), 'from layer 2');
  const layers = [l1, l2].map((d) => {
    const tar = execFileSync('tar', ['-C', d, '--numeric-owner', '--format=posix', '-cf', '-', '.'], { maxBuffer: 1 << 28 });
    const gz = execFileSync('gzip', ['-n'], { input: tar, maxBuffer: 1 << 28 });
    return { tar, ...put(gz) };
  });
  const manifests = ['arm64', 'amd64'].map((architecture) => {
    const config = put(Buffer.from(JSON.stringify({
      architecture, os: 'linux', config: { Env: ['PATH=/bin:/usr/bin', 'FROM=layout'], Cmd: ['sh'], WorkingDir: '/data' },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha(l.tar)) },
    })));
    const m = put(Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
    })));
    return { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, platform: { os: 'linux', architecture } };
  });
  const index = put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests })));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', ...index, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
}

t.test('what skopeo pushes (an index, zstd layers, a whiteout), poc pulls by short name and runs', async (t) => {
  const layout = join(work, 'layout');
  makeLayout(layout);
  execFileSync('skopeo', ['copy', '--all', '--dest-tls-verify=false', '--dest-compress-format', 'zstd', `oci:${layout}:v1`, `docker://${plain.host}/multi:v1`], { stdio: 'pipe' });
  const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', '--override-arch', 'amd64', `docker://${plain.host}/multi:v1`], { encoding: 'utf8' }));
  t.equal(raw.mediaType, 'application/vnd.oci.image.index.v1+json', 'the registry holds an index');
  const amd = raw.manifests.find((m: { platform: { architecture: string } }) => m.platform.architecture === 'amd64');
  const inner = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/multi@${amd.digest}`], { encoding: 'utf8' }));
  t.same(inner.layers.map((l: { mediaType: string }) => l.mediaType), Array(2).fill('application/vnd.oci.image.layer.v1.tar+zstd'), 'zstd layers');

  const r = poc(['pull', 'multi:v1']);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, new RegExp(`Trying to pull ${plain.host.replace(/\./g, '\\.')}/multi:v1`));
  const listed = (JSON.parse(poc(['images', '--format', 'json']).stdout) as Array<{ name: string; architecture: string }>).find((i) => i.name === `${plain.host}/multi:v1`);
  t.equal(listed?.architecture, 'amd64', 'the host platform was chosen from the index');
  const run = poc(['run', '--rm', '--network', 'none', 'multi:v1', 'sh', '-c', 'pwd; ls; cat new; echo; echo $FROM']);
  t.equal(run.stdout, '/data\nkeep\nnew\nfrom layer 2\nlayout\n', `short name found locally; whiteout applied; config kept ${run.stderr}`);
});

t.test('Docker v2 schema 2: a manifest list and its manifests, as skopeo converts them, pull and run', async (t) => {
  execFileSync('skopeo', ['copy', '--all', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${join(work, 'layout')}:v1`, `docker://${plain.host}/dlist:v1`], { stdio: 'pipe' });
  const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/dlist:v1`], { encoding: 'utf8' }));
  t.equal(raw.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json', 'the registry holds a Docker manifest list');
  const r = poc(['pull', `${plain.host}/dlist:v1`]);
  t.equal(r.status, 0, r.stderr);
  const run = poc(['run', '--rm', '--network', 'none', `${plain.host}/dlist:v1`, 'cat', 'new']);
  t.equal(run.stdout, 'from layer 2', run.stderr);
});

t.test('--all-platforms: every platform of the index pulled; the push sends the whole index, same digest', async (t) => {
  const envA = { ...env, POC_ROOT: join(work, 'poc-all') };
  const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/multi:v1`], { encoding: 'utf8' }));
  const indexDigest = sha(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/multi:v1`]));
  let r = poc(['pull', '--all-platforms', `${plain.host}/multi:v1`], { env: envA });
  t.equal(r.status, 0, r.stderr);
  r = poc(['push', `${plain.host}/multi:v1`, `${plain.host}/multi-copy:v1`], { env: envA });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), indexDigest, 'the index pushed as it was pulled');
  const copied = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${plain.host}/multi-copy:v1`], { encoding: 'utf8' }));
  t.same(copied, index);
  const arm = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--override-arch', 'arm64', `docker://${plain.host}/multi-copy:v1`], { encoding: 'utf8' }));
  t.equal(arm.Architecture, 'arm64', "the other platform's manifest and config are there too");
  const dir = join(work, 'multi-copy-dir');
  const all = spawnSync('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${plain.host}/multi-copy:v1`, `dir:${dir}`], { encoding: 'utf8' });
  t.equal(all.status, 0, `skopeo copies every platform of it (each blob is there): ${all.stderr}`);
  r = poc(['run', '--rm', '--network', 'none', `${plain.host}/multi:v1`, 'cat', '/data/keep'], { env: envA });
  t.equal(r.stdout, 'kept', `and the image is the host's platform: ${r.stderr}`);
  rmSync(join(work, 'poc-all'), { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
});

t.test('on a terminal, one progress line per layer, redrawn in place', async (t) => {
  // script(1) gives poc a pty; a fresh store so that every layer is fetched.
  const e = { ...env, POC_ROOT: join(work, 'poc-tty') };
  const r = spawnSync('script', ['-qec', `${POC} pull ${plain.host}/multi:v1`, '/dev/null'], { encoding: 'utf8', env: e, timeout: 120_000 });
  t.equal(r.status, 0, r.stdout);
  t.match(r.stdout, /[a-f0-9]{12}: Pull complete/, 'each layer ends "Pull complete"');
  t.match(r.stdout, /\x1b\[\d+A/, 'lines are redrawn (cursor up)');
  rmSync(join(work, 'poc-tty'), { recursive: true, force: true });
});

t.test('layers shared by digest are downloaded once', async (t) => {
  // The same layers under another tag with another config: only the config and manifest are new.
  execFileSync('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--override-arch', 'amd64', `docker://${plain.host}/multi:v1`, `docker://${plain.host}/multi:v2`], { stdio: 'pipe' });
  const before = plain.log().length;
  const r = poc(['pull', `${plain.host}/multi:v2`]);
  t.equal(r.status, 0, r.stderr);
  const log = plain.log().slice(before);
  const blobGets = [...log.matchAll(/"GET \/v2\/multi\/blobs\/(sha256:[a-f0-9]+)/g)].map((m) => m[1]);
  t.equal(blobGets.length, 0, `no blob fetched again (${blobGets.join(', ')})`);
  t.ok(imageNames().includes(`${plain.host}/multi:v2`));
});

/** An OCI layout with the first layout's amd64 manifest, its config's diff_ids replaced by `diffIds(real)`. */
function lyingLayout(dir: string, diffIds: (real: string[]) => string[]): void {
  const src = join(work, 'layout');
  const blobs = join(dir, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const read = (d: string) => readFileSync(join(src, 'blobs/sha256', d.slice(7)));
  const put = (data: Buffer) => {
    writeFileSync(join(blobs, sha(data).slice(7)), data);
    return { digest: sha(data), size: data.length };
  };
  const index = JSON.parse(read(JSON.parse(readFileSync(join(src, 'index.json'), 'utf8')).manifests[0].digest).toString());
  const manifest = JSON.parse(read(index.manifests.find((m: { platform: { architecture: string } }) => m.platform.architecture === 'amd64').digest).toString());
  for (const l of manifest.layers) put(read(l.digest));
  const config = JSON.parse(read(manifest.config.digest).toString());
  config.rootfs.diff_ids = diffIds(config.rootfs.diff_ids);
  manifest.config = { ...manifest.config, ...put(Buffer.from(JSON.stringify(config))) };
  const m = put(Buffer.from(JSON.stringify(manifest)));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: manifest.mediaType, ...m, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
}

t.test('a pull keeps the verified blobs; the files are made on first use, once, whole', async (t) => {
  // A fresh store: nothing unpacked yet.
  const root3 = join(work, 'poc3');
  const env3 = { ...env, POC_ROOT: root3 };
  const record = (name: string) => {
    const id = (JSON.parse(poc(['images', '--format', 'json'], { env: env3 }).stdout) as Array<{ id: string; name: string }>).find((i) => i.name === name)!.id;
    return { id, rootfs: join(root3, 'images', id, 'rootfs'), json: JSON.parse(readFileSync(join(root3, 'images', id, 'image.json'), 'utf8')) };
  };
  const litter3 = () => ['images', 'blobs/sha256'].flatMap((sub) => (existsSync(join(root3, sub)) ? readdirSync(join(root3, sub)).filter((n) => n.startsWith('.')) : []));
  const name = `${plain.host}/multi:v1`;
  let r = poc(['pull', name], { env: env3 });
  t.equal(r.status, 0, r.stderr);
  let img = record(name);
  t.notOk(existsSync(img.rootfs), 'no files yet');
  t.equal(img.json.unpack.length, 2, 'its two layers to unpack, with their diff_ids');
  t.ok(img.json.size > 0, 'a size (the layers\' tars) for poc images');
  t.equal(poc(['tag', name, 'copy'], { env: env3 }).status, 0);
  t.notOk(existsSync(record('copy').rootfs), 'a tag of it copies the record alone');

  // Two first runs at once: one unpacks, the other waits for it; both see the whole image.
  const runs = await Promise.all([1, 2].map(() => pocAsync(['run', '--rm', '--network', 'none', name, 'sh', '-c', 'cat /data/new; ls /data'], env3)));
  for (const run of runs) t.equal(run.stdout, 'from layer 2keep\nnew\n', run.stderr);
  img = record(name);
  t.ok(existsSync(img.rootfs), 'unpacked');
  t.notOk('unpack' in img.json, 'the record says so');
  t.same(litter3(), [], 'no staging directory left');

  // A layer blob damaged on disk after the pull: the first use of the tag says so and removes it; a pull
  // fetches it again; then the tag runs.
  const layer = img.json.blobs[2] as string;
  const blob = join(root3, 'blobs/sha256', layer.slice(7));
  const fd = openSync(blob, 'r+');
  writeSync(fd, Buffer.from('damaged!'), 0, 8, 200);
  closeSync(fd);
  r = poc(['run', '--rm', '--network', 'none', 'copy', 'true'], { env: env3 });
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`^poc: unpack image copy: layer 1 of 2 \\(${layer}\\): the blob in the store no longer matches its digest .*it was removed: pull the image again`));
  t.notOk(existsSync(record('copy').rootfs), 'nothing half-unpacked');
  t.same(litter3(), [], 'no staging directory left');
  r = poc(['pull', name], { env: env3 });
  t.match(r.stderr, /Downloaded newer image/, 'the pull fetched the removed blob');
  r = poc(['run', '--rm', '--network', 'none', 'copy', 'cat', '/data/keep'], { env: env3 });
  t.equal(r.stdout, 'kept', r.stderr);

  // An image whose config lies about its layers' content: the blobs are right, so the pull succeeds; its first
  // use checks each layer's tar against the config's diff_id and fails, leaving nothing.
  const lying = join(work, 'lying');
  lyingLayout(lying, (ids) => [ids[1]!, ids[0]!]);
  execFileSync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${lying}:v1`, `docker://${plain.host}/lying:v1`], { stdio: 'pipe' });
  r = poc(['pull', `${plain.host}/lying:v1`], { env: env3 });
  t.equal(r.status, 0, r.stderr);
  r = poc(['run', '--rm', '--network', 'none', `${plain.host}/lying:v1`, 'true'], { env: env3 });
  t.equal(r.status, 1);
  t.match(r.stderr, /^poc: unpack image 127\.0\.0\.1:\d+\/lying:v1: layer 1 of 2 \(sha256:[a-f0-9]+\): its content's digest is sha256:[a-f0-9]+, the image config says sha256:/);
  t.notOk(existsSync(record(`${plain.host}/lying:v1`).rootfs), 'no rootfs');
  t.same(litter3(), [], 'no staging directory left');
  // The built-in save of a pulled image unpacks it too (its layers come from its files).
  r = poc(['save', '-o', join(work, 'multi.tar'), 'copy'], { env: env3 });
  t.equal(r.status, 0, r.stderr);
});

t.test('registries.conf mirrors: tried first, in order; one that fails is passed over; a digest-only one not asked for a tag', async (t) => {
  const dead = `127.0.0.1:${await freePort()}`; // nothing listens there
  const conf = join(work, 'mirrors.conf');
  writeFileSync(
    conf,
    [
      // A registry that is down, served by its mirror.
      '[[registry]]', `location = "${dead}"`, 'insecure = true',
      '[[registry.mirror]]', `location = "${plain.host}"`, 'insecure = true',
      // The plain registry itself: a digest-only mirror, then one without the image, then the location.
      '[[registry]]', `location = "${plain.host}"`, 'insecure = true',
      '[[registry.mirror]]', `location = "${plain.host}/by-digest"`, 'insecure = true', 'pull-from-mirror = "digest-only"',
      '[[registry.mirror]]', `location = "${plain.host}/empty"`, 'insecure = true',
    ].join('\n'),
  );
  const envM = { ...env, POC_ROOT: join(work, 'poc-mirrors'), CONTAINERS_REGISTRIES_CONF: conf };
  let before = plain.log().length;
  let r = poc(['pull', `${dead}/multi:v1`], { env: envM });
  t.equal(r.status, 0, r.stderr);
  t.match(plain.log().slice(before), /"GET \/v2\/multi\/manifests\/v1 HTTP\/1\.1" 200/, 'the mirror served it');
  r = poc(['run', '--rm', '--network', 'none', `${dead}/multi:v1`, 'cat', '/data/keep'], { env: envM });
  t.equal(r.stdout, 'kept', `stored under the name asked for: ${r.stderr}`);

  before = plain.log().length;
  r = poc(['pull', `${plain.host}/multi:v2`], { env: envM });
  t.equal(r.status, 0, r.stderr);
  const log = plain.log().slice(before);
  t.notMatch(log, /\/v2\/by-digest\//, 'the digest-only mirror is not asked for a tag');
  t.match(log, /"GET \/v2\/empty\/multi\/manifests\/v2 HTTP\/1\.1" 404/, 'the mirror without it was asked first');
  t.match(log, /"GET \/v2\/multi\/manifests\/v2 HTTP\/1\.1" 200/, 'then the location');

  r = poc(['pull', `${dead}/nosuch:v1`], { env: envM });
  t.equal(r.status, 1);
  t.match(r.stderr, /cannot reach registry 127\.0\.0\.1:\d+.* \(and before it mirror 127\.0\.0\.1:\d+\/nosuch: .*not found in the registry/, 'the location\'s error, the mirror\'s beside it');
  rmSync(join(work, 'poc-mirrors'), { recursive: true, force: true });
});

t.test('pull-on-run of an image that is not there yet (by digest)', async (t) => {
  const digest = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${plain.host}/multi:v1`], { encoding: 'utf8' })).Digest;
  const r = poc(['run', '--rm', '--network', 'none', `${plain.host}/multi@${digest}`, 'cat', 'keep']);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, 'kept');
  t.match(r.stderr, /Unable to find image .* locally/);
  t.ok(imageNames().includes(`${plain.host}/multi@${digest}`), 'stored under its digest');
  t.match(poc(['images']).stdout, new RegExp(`^${plain.host.replace(/\./g, '\\.')}/multi +<none> +[a-f0-9]{12}`, 'm'), 'listed without a tag, as docker lists it');
});

t.test('bad input: each a clear error, the store left as it was', async (t) => {
  // A fresh store, so that every blob has to come from the registry.
  const root2 = join(work, 'poc2');
  const env2 = { ...env, POC_ROOT: root2 };
  const images2 = () => poc(['images', '--format', 'json'], { env: env2 }).stdout.trim();
  const litter2 = () => ['images', 'blobs/sha256'].flatMap((sub) => (existsSync(join(root2, sub)) ? readdirSync(join(root2, sub)).filter((n) => n.startsWith('.')) : []));

  let r = poc(['pull', `${plain.host}/nosuch:v1`], { env: env2 });
  t.equal(r.status, 1);
  t.match(r.stderr, /^poc: 127\.0\.0\.1:\d+\/nosuch:v1: not found in the registry/m);
  r = poc(['pull', 'nosuch'], { env: env2 });
  t.match(r.stderr, /127\.0\.0\.1:\d+\/nosuch:latest: not found in the registry/, 'a short name is looked for only in the configured search registry');

  const wrong = join(work, 'wrong-auth.json');
  writeFileSync(wrong, JSON.stringify({ auths: { [secure.host]: { auth: Buffer.from('alice:nope').toString('base64') } } }));
  r = poc(['pull', ...tls, '--authfile', wrong, `${secure.host}/team/bb:v1`], { env: env2 });
  t.equal(r.status, 1);
  t.match(r.stderr, /refused the credentials for 127\.0\.0\.1:\d+ in .*wrong-auth\.json: wrong username or password/);

  r = poc(['pull', `${secure.host}/team/bb:v1`], { env: env2 });
  t.equal(r.status, 1);
  t.match(r.stderr, /cannot reach registry 127\.0\.0\.1:\d+: .*(certificate|TLS|issuer)/i, 'a registry whose CA is not given is refused');

  // A corrupt blob: the registry's copy of the layer altered in place, same size. Pushed monolithically (one PUT).
  r = poc(['push', '--chunk-size', '0', 'busybox', `${plain.host}/corrupt:v1`]);
  t.equal(r.status, 0, r.stderr);
  const layer = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${plain.host}/corrupt:v1`], { encoding: 'utf8' })).Layers[0] as string;
  const hex = layer.slice(7);
  const data = join(plain.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  const fd = openSync(data, 'r+');
  writeSync(fd, Buffer.from('corrupt!'), 0, 8, 1000);
  closeSync(fd);
  r = poc(['pull', `${plain.host}/corrupt:v1`], { env: env2 });
  t.equal(r.status, 1);
  t.match(r.stderr, new RegExp(`blob ${layer}: the data received does not match its digest`));

  // A registry that dies in the middle of a blob.
  const proxy = await startDyingProxy(plain.host);
  r = await pocAsync(['pull', '--tls-verify=false', `${proxy.host}/multi:v1`], env2);
  proxy.stop();
  t.ok(proxy.died(), 'the proxy cut a blob in half');
  t.equal(r.status, 1);
  t.match(r.stderr, /the download from 127\.0\.0\.1:\d+ (was interrupted|ended) after \d+ of \d+ bytes/);

  t.equal(images2(), '[]', 'no image in the store');
  t.same(litter2(), [], 'no staging directory, no partial blob');
  t.same(storeLitter(), [], 'nor in the first store');
  // The whole blobs fetched before the failures stay for a retry, until a prune: no image needs them.
  t.ok(readdirSync(join(root2, 'blobs/sha256')).length > 0, 'verified blobs kept as a cache');
  // (pruneImages is `poc prune`'s image part; the command itself would also take down the shared bridge.)
  await pruneImages({ root: root2 });
  t.same(readdirSync(join(root2, 'blobs/sha256')), [], 'a prune removes blobs no image needs');
  // In the first store, a prune keeps every blob its images need: a pulled image still pushes from its blobs.
  await pruneImages({ root });
  const again = poc(['push', ...tls, `${secure.host}/team/bb:v1`, `${secure.host}/team/after-prune:v1`]);
  t.equal(again.status, 0, again.stderr);
});

t.test('bearer tokens: login, push, a mount with two scopes, pull; skopeo reads it', async (t) => {
  // The token server runs in this process: poc runs asynchronously.
  let r = await pocAsync(['login', '-u', 'bob', '-p', 'wrong', tokenReg.host], env);
  t.equal(r.status, 1);
  t.match(r.stderr, /authentication failed with the credentials .*wrong username or password\? \(UNAUTHORIZED: bad credentials\)/);
  r = await pocAsync(['login', '-u', 'bob', '-p', 't0ken-pw', tokenReg.host], env);
  t.equal(r.status, 0, r.stderr);
  r = await pocAsync(['push', 'busybox', `${tokenReg.host}/tok/bb:v1`], env);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), pushedDigest, 'the same image as pushed to the basic-auth registry');
  t.ok(tokens.requests.some((s) => s.includes('repository:tok/bb:pull,push')), 'a push token for the repository');
  r = await pocAsync(['pull', `${tokenReg.host}/tok/bb:v1`], env);
  t.equal(r.status, 0, r.stderr);
  r = await pocAsync(['push', `${tokenReg.host}/tok/bb:v1`, `${tokenReg.host}/tok/copy:v1`], env);
  t.equal(r.status, 0, r.stderr);
  t.ok(tokens.requests.some((s) => s.includes('repository:tok/copy:pull,push') && s.includes('repository:tok/bb:pull')), 'the mount asked for pull on the source too');
  t.ok(/"POST \/v2\/tok\/copy\/blobs\/uploads\/\?mount=sha256%3A[a-f0-9]+&from=tok%2Fbb HTTP\/1\.1" 201/.test(tokenReg.log()), 'mounted');
  const inspect = await new Promise<string>((resolve) => {
    const c = spawn('skopeo', ['inspect', '--tls-verify=false', '--creds', 'bob:t0ken-pw', `docker://${tokenReg.host}/tok/copy:v1`], { env });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d));
    c.on('close', () => resolve(out));
  });
  t.equal(JSON.parse(inspect).Digest, pushedDigest, 'skopeo reads it through the same token server');
});

t.test("docker's identitytoken: an OAuth2 refresh token exchanged at the token server; skopeo reads the same file", async (t) => {
  const bare = { ...env };
  delete bare.REGISTRY_AUTH_FILE;
  const docker = join(home, '.docker');
  mkdirSync(docker, { recursive: true });
  const config = (token: string) =>
    writeFileSync(join(docker, 'config.json'), JSON.stringify({ auths: { [tokenReg.host]: { auth: Buffer.from('bob:').toString('base64'), identitytoken: token } } }));
  config('refresh-4b1d');
  const before = tokens.grants.length;
  let r = await pocAsync(['pull', `${tokenReg.host}/tok/copy:v1`], bare);
  t.equal(r.status, 0, r.stderr);
  t.ok(tokens.grants.slice(before).length > 0 && tokens.grants.slice(before).every((g) => g === 'refresh_token'), 'every token came from the refresh token, none from a password');
  const skopeo = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const c = spawn('skopeo', ['inspect', '--tls-verify=false', '--authfile', join(docker, 'config.json'), `docker://${tokenReg.host}/tok/copy:v1`], { env: bare });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d));
    c.stderr.on('data', (d: Buffer) => (out += d));
    c.on('close', (code) => resolve({ code, out }));
  });
  t.equal(skopeo.code, 0, `skopeo takes the same identity token from the same file: ${skopeo.out}`);
  config('revoked');
  r = await pocAsync(['pull', `${tokenReg.host}/tok/copy:v1`], bare);
  t.equal(r.status, 1);
  t.match(r.stderr, /authentication failed with the credentials for 127\.0\.0\.1:\d+ in .*config\.json: the identity token was refused .*invalid_grant/);
  rmSync(docker, { recursive: true });
});

t.test('logout', async (t) => {
  let r = poc(['logout', secure.host]);
  t.equal(r.status, 0, r.stderr);
  t.notOk(JSON.parse(readFileSync(authFile, 'utf8')).auths[secure.host]);
  r = poc(['logout', secure.host]);
  t.equal(r.status, 1);
  t.match(r.stderr, /not logged in to 127\.0\.0\.1:\d+/);
  r = poc(['pull', ...tls, `${secure.host}/team/bb:v1`]);
  t.match(r.stderr, /requires a login/);
});
