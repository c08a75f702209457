#!/usr/bin/env node
// Registry benchmark, in one run: `poc pull` of a ~100 MB multi-layer image from a local registry against
// `skopeo copy` of it to a directory and against `podman pull` into a private store; then, since poc's pull
// leaves the unpacking of the layers to the image's first use (README: "Pull: blobs now, files on first use"),
// the pull and the first `run` of the image together, against podman's pull and run; `poc push` against
// `skopeo copy` from a directory to the registry. Prints medians and ratios (target: ≤ 1.0 for each).
//
// usage: node bench/pull.mjs [--reps N]
//
// The registry is Debian's docker-registry on 127.0.0.1 (plain HTTP, marked insecure in a registries.conf of
// the bench's own). The image: 4 gzip layers made from the host's files (the busybox rootfs, /usr/lib/python3,
// /usr/share/perl, /usr/lib/x86_64-linux-gnu/perl: ~100 MB unpacked, many small files, as real images are).
// Every pull starts from an empty store (poc's POC_ROOT, podman's --root, skopeo's directory); every push goes
// to an empty registry (stopped, wiped, started again between repetitions, untimed), so each tool sends every
// blob. The tools take turns, so that the machine's drift falls on all of them alike. The runs: `true` with no
// network, podman with crun (its default here) nofile 1024 and nproc 4096 (this host has no CAP_SYS_RESOURCE).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1] || 0) || 5;
const POC = join(top, 'dist/poc');
if (!existsSync(POC)) throw new Error('build first: npm run -s build');
const work = mkdtempSync(join(tmpdir(), 'poc-bench-pull-'));
const children = [];
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill();
  // A repetition that failed before its `podman system reset` leaves podman's overlay mount in the work directory.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m?.startsWith(`${work}/`));
  for (const m of mounts.reverse()) spawnSync('umount', [m]);
  rmSync(work, { recursive: true, force: true });
});
// Interrupted: the same cleanup (the registries are this process's children).
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const listening = (port) =>
  new Promise((resolve) => {
    const c = connect(port, '127.0.0.1', () => (c.destroy(), resolve(true)));
    c.on('error', () => resolve(false));
  });

async function startRegistry(dir, port) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'storage')}\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  const out = openSync(join(dir, 'log'), 'a');
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', out, out] });
  children.push(child);
  for (let i = 0; i < 400 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 25));
  return {
    host: `127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', resolve);
        child.kill();
      }),
  };
}

const sha = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** The image as an OCI layout: gzip layers of host directories. */
function makeLayout(dir) {
  const blobs = join(dir, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (data) => {
    const digest = sha(data);
    writeFileSync(join(blobs, digest.slice(7)), data);
    return { digest, size: data.length };
  };
  const bb = join(work, 'busybox-rootfs');
  execFileSync(join(top, 'bundles/make-busybox-rootfs.sh'), [bb], { stdio: 'ignore' });
  const sources = [
    ['-C', bb, '.'],
    ['-C', '/', 'usr/lib/python3'],
    ['-C', '/', 'usr/share/perl'],
    ['-C', '/', 'usr/lib/x86_64-linux-gnu/perl'],
  ];
  let unpacked = 0;
  const layers = sources.map((src) => {
    const tar = execFileSync('tar', ['--numeric-owner', '--format=posix', '-cf', '-', ...src], { maxBuffer: 1 << 30 });
    unpacked += tar.length;
    return { tar, ...put(execFileSync('gzip', ['-n'], { input: tar, maxBuffer: 1 << 30 })) };
  });
  const config = put(Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => sha(l.tar)) },
  })));
  const manifest = put(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  })));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }));
  return { unpacked, packed: layers.reduce((n, l) => n + l.size, 0), layers: layers.length };
}

/** CPU seconds (user + system) of this process's waited-for children so far: /proc/self/stat cutime + cstime. */
function childCpu() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // USER_HZ is 100 on Linux
}

/** Wall time (ms) and CPU time (s) of one run: on a busy machine the CPU time is the steadier figure. */
function timed(cmd, argv, env) {
  const cpu0 = childCpu();
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return { ms, cpu: childCpu() - cpu0 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const pullPort = await freePort();
const pushPort = await freePort();
const reg = await startRegistry(join(work, 'registry'), pullPort);
const conf = join(work, 'registries.conf');
writeFileSync(conf, `unqualified-search-registries = []\n[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n[[registry]]\nlocation = "127.0.0.1:${pushPort}"\ninsecure = true\n`);
writeFileSync(join(work, 'auth.json'), '{}');
const env = { ...process.env, CONTAINERS_REGISTRIES_CONF: conf, REGISTRY_AUTH_FILE: join(work, 'auth.json') };
const layout = join(work, 'layout');
const size = makeLayout(layout);
execFileSync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${reg.host}/bench:v1`], { stdio: 'ignore', env });
const image = `${reg.host}/bench:v1`;
console.log(`image: ${size.layers} layers, ${(size.packed / 1e6).toFixed(1)} MB compressed, ${(size.unpacked / 1e6).toFixed(1)} MB unpacked; ${reps} repetitions each`);

const podmanBase = (d) => ['--root', join(d, 'root'), '--runroot', join(d, 'run'), '--tmpdir', join(d, 'tmp'), '--storage-driver', 'overlay', '--events-backend', 'file', '--cgroup-manager', 'cgroupfs'];
const t = { poc: [], skopeo: [], podman: [], pocRun: [], podmanRun: [], pocPush: [], skopeoPush: [] };
const runArgs = ['run', '--rm', '--network', 'none', image, 'true'];
for (let i = 0; i < reps; i++) {
  const d = join(work, `rep${i}`);
  mkdirSync(d);
  t.poc.push(timed(POC, ['pull', '-q', image], { ...env, POC_ROOT: join(d, 'poc') }));
  t.skopeo.push(timed('skopeo', ['copy', '--src-tls-verify=false', `docker://${image}`, `dir:${join(d, 'dir')}`], env));
  t.podman.push(timed('podman', [...podmanBase(join(d, 'podman')), 'pull', '-q', image], env));
  // The first run of the image each tool pulled: poc's unpacks the layers here.
  t.pocRun.push(timed(POC, runArgs, { ...env, POC_ROOT: join(d, 'poc') }));
  t.podmanRun.push(timed('podman', [...podmanBase(join(d, 'podman')), 'run', '--runtime', 'runc', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096', ...runArgs.slice(1)], env));
  // Push: each tool into an empty registry.
  for (const [name, argv] of [
    ['pocPush', [POC, ['push', '-q', image, `127.0.0.1:${pushPort}/bench:v1`], { ...env, POC_ROOT: join(d, 'poc') }]],
    ['skopeoPush', ['skopeo', ['copy', '--dest-tls-verify=false', `dir:${join(d, 'dir')}`, `docker://127.0.0.1:${pushPort}/bench:v1`], env]],
  ]) {
    rmSync(join(work, 'push'), { recursive: true, force: true });
    const pr = await startRegistry(join(work, 'push'), pushPort);
    t[name].push(timed(...argv));
    await pr.stop();
  }
  spawnSync('podman', [...podmanBase(join(d, 'podman')), 'system', 'reset', '-f'], { stdio: 'ignore', env });
  rmSync(d, { recursive: true, force: true });
}
await reg.stop();

const row = (label, k) => `${label.padEnd(40)} ${m[k].toFixed(0).padStart(7)} ms  ${c[k].toFixed(2).padStart(6)} s CPU`;
// Pull and first run: each repetition's sum, then the median of the sums.
t.pocBoth = t.poc.map((x, i) => ({ ms: x.ms + t.pocRun[i].ms, cpu: x.cpu + t.pocRun[i].cpu }));
t.podmanBoth = t.podman.map((x, i) => ({ ms: x.ms + t.podmanRun[i].ms, cpu: x.cpu + t.podmanRun[i].cpu }));
const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v.map((x) => x.ms))]));
const c = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v.map((x) => x.cpu))]));
const ratio = (a, b) => `${(m[a] / m[b]).toFixed(2)} (CPU ${(c[a] / c[b]).toFixed(2)})`;
console.log('\npull (medians: wall time, and CPU time of the tool and its children)');
console.log(row('skopeo copy docker:// → dir:', 'skopeo'));
console.log(row('podman pull (private store, overlay)', 'podman'));
console.log(row('poc pull', 'poc'));
console.log(`  poc pull / skopeo copy to dir: ${ratio('poc', 'skopeo')}    poc pull / podman pull: ${ratio('poc', 'podman')}`);
console.log('\nthe first run of the pulled image (poc unpacks its layers here), and pull + first run');
console.log(row('podman run --rm (first)', 'podmanRun'));
console.log(row('poc run --rm (first: unpacks)', 'pocRun'));
console.log(row('podman pull + run', 'podmanBoth'));
console.log(row('poc pull + run', 'pocBoth'));
console.log(`  poc pull + run / podman pull + run: ${ratio('pocBoth', 'podmanBoth')}`);
console.log('\npush into an empty registry (medians)');
console.log(row('skopeo copy dir: → docker://', 'skopeoPush'));
console.log(row('poc push', 'pocPush'));
console.log(`  poc push / skopeo copy: ${ratio('pocPush', 'skopeoPush')}`);
