#!/usr/bin/env node
// Compose benchmark, in one run: the README's three-service application (examples/compose-app: web on a published
// port, api, store with a named volume and a health check) brought up with `up -d` and taken down with `down`, by
// `poc compose` and by Debian's `podman-compose` (podman with runc, cgroupfs, a private store), taking turns.
// Prints the medians and the ratios poc / podman-compose (target ≤ 0.5) for:
//   up -d        until the command returns;
//   up+answer    until the web front answers through the published port (the application is usable);
//   down         until the command returns (containers, network; the volume kept).
//
// usage: node bench/compose.mjs [--reps N]
//
// Both run in a network namespace of the bench's own (a simulated host with an uplink namespace, as the tests
// make it): their bridges, rules and DNS servers never touch the real host's network. The image is poc init's
// Debian image of the default POC_ROOT (make it with `poc init`), linked into the bench's POC_ROOT and saved
// once into podman's store (untimed). Not the same work: poc compose waits for the store's health check before
// it starts the api (depends_on: condition: service_healthy, as docker compose does); podman-compose 1.0.3
// starts the services in order without waiting for any condition, so its `up -d` returns earlier than the
// application can answer: up+answer is the fair comparison of the two.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1] || 0) || 5;
const POC = join(top, 'dist/poc');
if (!existsSync(POC)) throw new Error('build first: npm run -s build');
for (const p of ['podman-compose', 'podman', 'runc', 'aardvark-dns']) {
  if (spawnSync('sh', ['-c', `command -v ${p} || test -x /usr/lib/podman/${p}`]).status !== 0) throw new Error(`${p} is missing: ./scripts/setup.sh installs it`);
}

const work = mkdtempSync('/var/tmp/poc-bench-compose-');
const tag = `pcb${process.pid}`;
const ns = { host: `${tag}-host`, uplink: `${tag}-up` };
const netns = ['nsenter', `--net=/run/netns/${ns.host}`, '--'];
const pocRoot = join(work, 'poc');
const podmanConf = join(work, 'containers.conf');
const storageConf = join(work, 'storage.conf');
const app = join(work, 'app');

function run(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: exit ${r.status}: ${r.stderr || r.stdout}`);
  return `${r.stdout}${r.stderr}`;
}

const podmanEnv = { ...process.env, CONTAINERS_CONF: podmanConf, CONTAINERS_STORAGE_CONF: storageConf, IMAGE: 'localhost/debian:latest' };
const pocEnv = { ...process.env, POC_ROOT: pocRoot, POC_RESOLV_CONF: join(work, 'resolv.conf') };
delete pocEnv.POC_PROGRAM;
// podman runs in a mount namespace of the bench's own, where its network run directory (/run/containers/networks:
// aardvark-dns's configuration, netavark's state) is the bench's: one aardvark-dns serves every podman network of
// a host, and one started by another user of podman lives in another network namespace, where the bench's
// containers' names would not resolve. The namespace lasts from the first podman command to the cleanup, so the
// network namespaces podman mounts under /run/netns stay visible to each of its commands.
const mntns = join(work, 'ns/mnt');
const inPodmanNs = ['nsenter', `--mount=${mntns}`, `--net=/run/netns/${ns.host}`, `--wd=${app}`, '--'];
const tools = {
  poc: { up: [...netns, POC, 'compose', '-p', 'bench', 'up', '-d'], down: [...netns, POC, 'compose', '-p', 'bench', 'down'], env: pocEnv },
  'podman-compose': { up: [...inPodmanNs, 'podman-compose', '-p', 'bench', 'up', '-d'], down: [...inPodmanNs, 'podman-compose', '-p', 'bench', 'down'], env: podmanEnv },
};

function cleanup() {
  for (const t of Object.values(tools)) spawnSync(t.down[0], [...t.down.slice(1), '-v'], { cwd: app, env: t.env, stdio: 'ignore' });
  if (existsSync(mntns)) {
    spawnSync(inPodmanNs[0], [...inPodmanNs.slice(1), 'podman', 'system', 'reset', '-f'], { env: podmanEnv, stdio: 'ignore' });
    // An aardvark-dns netavark left running in the bench's mount namespace (one of another user's lives elsewhere).
    const ours = spawnSync('stat', ['-L', '-c', '%i', mntns], { encoding: 'utf8' }).stdout.trim();
    for (const pid of spawnSync('pgrep', ['-x', 'aardvark-dns'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
      try {
        if (readlinkSync(`/proc/${pid}/ns/mnt`) === `mnt:[${ours}]`) process.kill(Number(pid), 'SIGTERM');
      } catch {}
    }
  }
  for (const n of Object.values(ns)) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m && m.startsWith(`${work}/`));
  for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

// The simulated host: an uplink with a default route and a resolver answering NXDOMAIN (as a real one would).
for (const n of Object.values(ns)) run(['ip', 'netns', 'add', n]);
run(['ip', '-n', ns.host, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', ns.uplink]);
run(['ip', '-n', ns.host, '-batch', '-'], { input: 'link set lo up\naddr add 198.51.100.2/24 dev up0\nlink set up0 up\nroute add default via 198.51.100.1\n' });
run(['ip', '-n', ns.uplink, '-batch', '-'], { input: 'link set lo up\naddr add 198.51.100.1/24 dev up0\nlink set up0 up\n' });
run(['ip', 'netns', 'exec', ns.uplink, 'dnsmasq', '--conf-file=/dev/null', `--pid-file=${join(work, 'upstream.pid')}`, '--bind-interfaces', '--listen-address=198.51.100.1', '--no-hosts', '--no-resolv', '--local=//']);
process.on('exit', () => {
  try {
    process.kill(Number(readFileSync(join(work, 'upstream.pid'), 'utf8')), 'SIGTERM');
  } catch {}
});
writeFileSync(join(work, 'resolv.conf'), 'nameserver 198.51.100.1\n');
cpSync(join(top, 'examples/compose-app'), app, { recursive: true });

// podman's limits as the host allows them (it has no CAP_SYS_RESOURCE: runc could not raise nofile to podman's
// default 1048576). The image: the default root's Debian image, linked into poc's root and saved into podman's store.
const defaultRoot = process.env.POC_ROOT ?? '/var/lib/poc';
const imageId = readdirSync(join(defaultRoot, 'images')).find((id) => {
  try {
    return JSON.parse(readFileSync(join(defaultRoot, 'images', id, 'image.json'), 'utf8')).name === 'debian';
  } catch {
    return false;
  }
});
if (!imageId) throw new Error(`no image named debian in ${defaultRoot}: make it with "poc init"`);
mkdirSync(join(pocRoot, 'images'), { recursive: true });
run(['cp', '-al', join(defaultRoot, 'images', imageId), join(pocRoot, 'images', imageId)]);
mkdirSync(join(work, 'ns'));
run(['mount', '--bind', join(work, 'ns'), join(work, 'ns')]);
run(['mount', '--make-private', join(work, 'ns')]);
writeFileSync(mntns, '');
run(['unshare', `--mount=${mntns}`, '--propagation', 'private', 'true']);
mkdirSync(join(work, 'podman/netrun'), { recursive: true });
run(['nsenter', `--mount=${mntns}`, 'sh', '-c', `mkdir -p /run/containers/networks && mount --bind ${join(work, 'podman/netrun')} /run/containers/networks`]);
writeFileSync(podmanConf, `[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "${join(work, 'podman/tmp')}"\n[network]\nnetwork_config_dir = "${join(work, 'podman/networks')}"\n[containers]\nlog_driver = "k8s-file"\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n`);
writeFileSync(storageConf, `[storage]\ndriver = "overlay"\ngraphroot = "${join(work, 'podman/root')}"\nrunroot = "${join(work, 'podman/run')}"\n`);
run([POC, 'save', '-o', join(work, 'debian.tar'), 'debian'], { env: { ...process.env, POC_ROOT: defaultRoot } });
run([...inPodmanNs, 'podman', 'load', '-i', join(work, 'debian.tar')], { env: podmanEnv });
rmSync(join(work, 'debian.tar'));

const now = () => Number(process.hrtime.bigint()) / 1e9;
function answers() {
  const r = spawnSync('nsenter', [`--net=/run/netns/${ns.host}`, '--', 'curl', '-s', '-m', '2', 'http://127.0.0.1:8080/'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.startsWith('hello from web');
}
function once(t) {
  const t0 = now();
  const out = run(t.up, { cwd: app, env: t.env });
  const up = now() - t0;
  while (!answers()) {
    // podman-compose exits 0 even when a `podman run` of it failed: its output says what went wrong.
    if (now() - t0 > 60) throw new Error(`${t.up.slice(3).join(' ')}: the application did not answer within a minute:\n${out}`);
    spawnSync('sleep', ['0.02']);
  }
  const answered = now() - t0;
  const t1 = now();
  run(t.down, { cwd: app, env: t.env });
  return { up, answered, down: now() - t1 };
}

// One untimed round each: the first run of a tool pays for caches (podman's network backend, poc's layers).
for (const t of Object.values(tools)) once(t);
const results = Object.fromEntries(Object.keys(tools).map((k) => [k, { up: [], answered: [], down: []}]));
for (let i = 0; i < reps; i++) {
  for (const [name, t] of Object.entries(tools)) {
    const r = once(t);
    for (const k of ['up', 'answered', 'down']) results[name][k].push(r[k]);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (s) => `${(s * 1000).toFixed(0).padStart(6)} ms`;
const pcVersion = /podman-composer? version\s+(\S+)/.exec(run(['podman-compose', 'version'], { env: podmanEnv }))?.[1] ?? '?';
const versions = `${run([POC, '--version']).trim()}; podman-compose ${pcVersion}, ${run(['podman', '--version']).trim()}; ${run(['runc', '--version']).split('\n')[0]}`;
const lines = [
  `compose benchmark: examples/compose-app (3 services, Debian image), ${reps} repetitions, medians; ${new Date().toISOString()}`,
  versions,
  `load average: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  '',
  `${'step'.padEnd(12)} ${'poc'.padStart(9)} ${'podman-compose'.padStart(15)}  ratio (target <= 0.5)`,
];
for (const [k, label] of [['up', 'up -d'], ['answered', 'up+answer'], ['down', 'down']]) {
  const a = median(results.poc[k]);
  const b = median(results['podman-compose'][k]);
  lines.push(`${label.padEnd(12)} ${fmt(a)} ${fmt(b).padStart(15)}  ${(a / b).toFixed(2)}`);
}
lines.push('', `all (s): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([s, xs]) => [s, xs.map((x) => Number(x.toFixed(3)))]))])))}`);
console.log(lines.join('\n'));
