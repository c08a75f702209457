#!/usr/bin/env node
// Rootless engines: `poc run --rm busybox true` against rootless `podman run --rm` of the same busybox, run by the
// same ordinary user, in one run, alternating, so that the machine's drift falls on both alike. Prints medians
// (ms) and the ratio poc/podman for the default network of each (poc: slirp4netns; podman 4: slirp4netns) and for
// --network none.
//
// usage (as root): node bench/poc-rootless.mjs [--reps N] [--user NAME]
//
// Without --user it makes a user of its own (useradd, which gives it subuid and subgid ranges) with a home and an
// XDG_RUNTIME_DIR in a temporary directory, and removes it afterwards. With --user NAME that user's home is used,
// and its XDG_RUNTIME_DIR is made here. podman gets a containers.conf of the bench's (CONTAINERS_CONF): runc (crun
// refuses this host's hybrid cgroups), cgroupfs, events to a file, nofile 1024 (no CAP_SYS_RESOURCE here).
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const reps = Number(opt('--reps') || 20);
const POC = join(top, 'dist/poc');

if (process.getuid() !== 0) {
  console.error('bench/poc-rootless.mjs: run it as root (it makes or names the user the engines run as)');
  process.exit(1);
}

const work = mkdtempSync('/tmp/poc-rlbench-');
chmodSync(work, 0o755);
const named = opt('--user');
const name = named ?? `pocbench${process.pid}`;
if (!named) {
  const r = spawnSync('useradd', ['-M', '-d', join(work, 'home'), '-s', '/bin/sh', '-U', name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`useradd: ${r.stderr}`);
}
const id = (flag) => Number(spawnSync('id', [flag, name], { encoding: 'utf8' }).stdout.trim());
const uid = id('-u');
const gid = id('-g');
const home = named ? spawnSync('sh', ['-c', `getent passwd ${name} | cut -d: -f6`], { encoding: 'utf8' }).stdout.trim() : join(work, 'home');
const xdg = join(work, 'run');
for (const d of named ? [xdg] : [home, xdg]) {
  mkdirSync(d, { recursive: true });
  chownSync(d, uid, gid);
  chmodSync(d, 0o700);
}
const conf = join(work, 'containers.conf');
writeFileSync(conf, '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n[containers]\ndefault_ulimits = ["nofile=1024:1024"]\n');
chmodSync(conf, 0o644);
const env = [`HOME=${home}`, `USER=${name}`, `XDG_RUNTIME_DIR=${xdg}`, `CONTAINERS_CONF=${conf}`, 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
const asUser = (argv) => spawnSync('runuser', ['-u', name, '--', 'env', '-i', ...env, ...argv], { encoding: 'utf8', timeout: 120_000 });

function must(argv) {
  const r = asUser(argv);
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function cleanup() {
  // The user made here: its processes (podman's rootless pause process; both engines' containers are --rm) by pid,
  // then the user. A named user's podman keeps its pause process, as after any podman command of its own.
  if (!named) {
    const ps = spawnSync('ps', ['-u', String(uid), '-o', 'pid='], { encoding: 'utf8' }).stdout;
    for (const pid of ps.split('\n').map(Number).filter((p) => p > 0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    spawnSync('userdel', ['-f', name]);
  }
  rmSync(work, { recursive: true, force: true });
}

try {
  const rootfs = join(work, 'busybox');
  spawnSync(join(top, 'bundles/make-busybox-rootfs.sh'), [rootfs], { stdio: 'ignore' });
  const tar = join(work, 'busybox.tar');
  spawnSync('tar', ['-C', rootfs, '-cf', tar, '.']);
  chmodSync(tar, 0o644);
  must(['podman', 'import', tar, 'localhost/busybox']);
  must([POC, 'init', '--busybox']);

  const cases = [
    ['default network', [POC, 'run', '--rm', 'busybox', 'true'], ['podman', 'run', '--rm', 'localhost/busybox', 'true']],
    ['--network none', [POC, 'run', '--rm', '--network', 'none', 'busybox', 'true'], ['podman', 'run', '--rm', '--network', 'none', 'localhost/busybox', 'true']],
  ];
  const time = (argv) => {
    const t0 = process.hrtime.bigint();
    const r = asUser(argv);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    return ms;
  };
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const version = (argv) => asUser(argv).stdout.split('\n')[0].trim();
  console.log(`user ${name} (uid ${uid}); ${version([POC, '--version'])}; ${version(['podman', '--version'])} with ${version(['runc', '--version'])}`);
  console.log(`${reps} repetitions each, alternating; medians in ms (runuser's start-up included in both)\n`);
  console.log('| case | poc | podman | poc/podman |');
  console.log('|---|---:|---:|---:|');
  for (const [label, pocArgv, podmanArgv] of cases) {
    for (let i = 0; i < 2; i++) {
      time(pocArgv);
      time(podmanArgv);
    }
    const a = [];
    const b = [];
    for (let i = 0; i < reps; i++) {
      a.push(time(pocArgv));
      b.push(time(podmanArgv));
    }
    const [ma, mb] = [median(a), median(b)];
    console.log(`| \`run --rm\`, ${label} | ${ma.toFixed(1)} | ${mb.toFixed(1)} | ${(ma / mb).toFixed(2)} |`);
  }
} finally {
  cleanup();
}
