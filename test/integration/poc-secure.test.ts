/**
 * poc's secure defaults and docker's run flags with real containers (root, the built dist/poc, the busybox image
 * in a temporary POC_ROOT, --network none): the default seccomp profile refuses with EPERM what it denies and
 * seccomp=unconfined lets it through; --privileged sees the host's devices and every capability poc holds; each
 * flag as seen from inside the container; bad values are one clear error and leave nothing behind.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { pocIn } from '../helpers/poc.js';
import { buildBusyboxImage } from '../../src/poc/images/index.js';
import { stateDirs } from '../helpers/runtime.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'containers need root');
  process.exit(0);
}

const work = mkdtempSync('/tmp/poc-sec-');
const root = join(work, 'root');
const { poc, ok } = pocIn(root);

/** A shell script in a fresh busybox container (--rm, no network) with these flags: its output. */
const inside = (flags: string[], script: string) => ok(['run', '--rm', '--network', 'none', ...flags, 'busybox', 'sh', '-c', script]);

function capBnd(status: string): string {
  return /^CapBnd:\s*(\S+)/m.exec(status)![1]!;
}

/** What a container could leave behind: its directory, the runtime's state, a mount, a monitor. */
function residue() {
  const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  return {
    containers: ls(join(root, 'containers')),
    runtime: stateDirs(join(root, 'runtime')),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(root)),
    monitors: spawnSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.includes('poc-monitor') && l.includes(root)),
  };
}
const clean = { containers: [], runtime: [], mounts: [], monitors: [] };

t.before(async () => {
  await buildBusyboxImage({ root });
});

t.teardown(() => {
  for (const id of existsSync(join(root, 'containers')) ? readdirSync(join(root, 'containers')) : []) poc(['rm', '-f', id]);
  spawnSync('sh', ['-c', `grep -o ' ${root}[^ ]*' /proc/self/mountinfo | xargs -r -n1 umount -l`]);
  rmSync(work, { recursive: true, force: true });
});

t.test('the default seccomp profile: a denied syscall fails with EPERM; seccomp=unconfined lets it through', async (t) => {
  // unshare(CLONE_NEWUSER) needs no capability, so only the filter refuses it: the profile allows unshare only
  // with CAP_SYS_ADMIN, as docker's does. The unconfined run proves the kernel would have allowed it.
  const script = 'grep "^Seccomp:" /proc/self/status | tr -d "\\t"; unshare -U -r id -u 2>&1; echo "exit $?"';
  t.equal(inside([], script), 'Seccomp:2\nunshare: unshare(0x10000000): Operation not permitted\nexit 1\n', 'EPERM under the default profile');
  t.equal(inside(['--security-opt', 'seccomp=unconfined'], script), 'Seccomp:0\n0\nexit 0\n', 'allowed unconfined');
  t.equal(inside(['--cap-add', 'SYS_ADMIN'], script), 'Seccomp:2\n0\nexit 0\n', 'with CAP_SYS_ADMIN the profile allows unshare');
  t.same(JSON.parse(ok(['inspect', ok(['create', '--security-opt', 'seccomp=unconfined', 'busybox', 'true']).trim()]))[0].HostConfig.SecurityOpt, ['seccomp=unconfined']);
  ok(['rm', '-f', ...readdirSync(join(root, 'containers'))]);
});

t.test('--privileged: the host\'s devices, every capability poc holds, nothing masked, no seccomp, /sys writable', async (t) => {
  // A block device of the host (a loop device is on every machine with loop support; else any block device).
  const block = readdirSync('/dev').map((n) => `/dev/${n}`).find((p) => lstatSync(p).isBlockDevice());
  t.ok(block, 'the host has a block device to look for');
  const out = inside(['--privileged'], `grep -E "^(CapEff|Seccomp):" /proc/self/status | tr -d "\\t"; ls -l ${block}; grep -c -E " /proc/(keys|sys) " /proc/self/mounts; grep " /sys " /proc/self/mounts | cut -d" " -f4 | cut -d, -f1`);
  const [capEff, seccomp, dev, masked, sys] = out.trim().split('\n');
  t.equal(capEff, `CapEff:${capBnd(readFileSync('/proc/self/status', 'utf8'))}`, 'CapEff is poc\'s whole bounding set');
  t.equal(seccomp, 'Seccomp:0');
  const st = lstatSync(block!);
  const hostNode = `${Math.floor(st.rdev / 256) & 0xfff}, *${st.rdev & 0xff}`;
  t.match(dev, new RegExp(`^b.* ${hostNode} .*${block}$`), `${block} with the host's numbers`);
  t.equal(masked, '0', '/proc/keys not masked, /proc/sys not read-only');
  t.equal(sys, 'rw');
  const plain = inside([], `ls ${block} 2>&1; grep -c -E " /proc/(keys|sys) " /proc/self/mounts; grep "^CapEff:" /proc/self/status | tr -d "\\t"`);
  t.match(plain, /No such file or directory\n2\nCapEff:00000000a80425fb\n/, 'without it: no host device, /proc/keys masked and /proc/sys read-only, docker\'s capabilities');
});

t.test('each flag, seen from inside the container', async (t) => {
  const script = [
    'ls -l /dev/myzero | cut -c1', 'head -c 4 /dev/myzero | wc -c', '(exec 3</dev/myfuse) 2>/dev/null && echo read || echo read-denied', '(exec 3>/dev/myfuse) 2>/dev/null && echo written || echo write-denied', 'id -G', 'ulimit -n', 'ulimit -Hn', 'cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward',
    'grep " /run " /proc/self/mounts | cut -d" " -f4', 'grep " /dev/shm " /proc/self/mounts | grep -o "size=[0-9a-z]*"', 'cat /proc/1/cmdline | tr "\\0" " "; echo',
  ].join('; ');
  const out = inside(
    // /dev/zero is one of the devices every container may use; /dev/fuse is not, and :r lets it only be read.
    ['--device', '/dev/zero:/dev/myzero:r', '--device', '/dev/fuse:/dev/myfuse:r', '--group-add', '1234', '--group-add', 'nogroup', '--ulimit', 'nofile=500:600', '--sysctl', 'kernel.shmmax=1000000',
      '--sysctl', 'net.ipv4.ip_forward=1', '--tmpfs', '/run:size=1m,exec', '--shm-size', '8m', '--init'],
    script,
  );
  // Some kernels list tmpfs's inode64 (their default) among a tmpfs's options: not one of ours.
  t.equal(out.replace(',inode64', ''), [
    'c', '4', 'read', 'write-denied', '0 1234 65534', '500', '600', '1000000', '1', 'rw,nosuid,nodev,relatime,size=1024k', 'size=8192k', `/dev/init -- sh -c ${script} `, '',
  ].join('\n'));
  const id = ok(['create', '--label', 'app=web', '-l', 'tier', '--stop-signal', 'USR1', '--stop-timeout', '7', 'busybox', 'true']).trim();
  const c = JSON.parse(ok(['inspect', id]))[0];
  t.same([c.Config.Labels, c.Config.StopSignal, c.Config.StopTimeout], [{ app: 'web', tier: '' }, 'SIGUSR1', 7]);
  ok(['rm', id]);
});

t.test('--stop-signal and --stop-timeout: what poc stop sends, and how long it waits before SIGKILL', async (t) => {
  const polite = ok(['run', '-d', '--network', 'none', '--stop-signal', 'USR1', 'busybox', 'sh', '-c', 'trap "echo got USR1; exit 7" USR1; echo ready; while :; do sleep 0.1; done']).trim();
  for (let i = 0; i < 100 && !ok(['logs', polite]).includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  ok(['stop', polite]);
  t.match(ok(['logs', polite]), /got USR1/);
  t.equal(JSON.parse(ok(['inspect', polite]))[0].State.ExitCode, 7, 'it exited on the stop signal');
  // One that ignores its stop signal is killed after --stop-timeout.
  const stubborn = ok(['run', '-d', '--network', 'none', '--stop-signal', 'USR2', '--stop-timeout', '1', 'busybox', 'sh', '-c', 'trap "" USR2; echo ready; while :; do sleep 0.1; done']).trim();
  for (let i = 0; i < 100 && !ok(['logs', stubborn]).includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  // When it is killed is stopPlan's (unit-tested); here, that it is, and that stop waited for it.
  ok(['stop', stubborn]);
  t.equal(JSON.parse(ok(['inspect', stubborn]))[0].State.ExitCode, 137, 'killed');
  ok(['rm', polite, stubborn]);
});

t.test('bad values: one clear error naming the flag, nothing left behind', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--ulimit', 'nofile=1024:99999999'], /^poc: --ulimit nofile=1024:99999999: the hard limit is above this host's \(\d+\), and raising it needs CAP_SYS_RESOURCE/],
    [['--device', '/dev/nope'], /^poc: --device \/dev\/nope: no such device on the host/],
    [['--device', '/etc/hostname'], /^poc: --device \/etc\/hostname: not a character or block device/],
    [['--group-add', 'nosuchgroup'], /^poc: --group-add nosuchgroup: no such group in the image's \/etc\/group/],
    [['--sysctl', 'kernel.panic=1'], /^poc: invalid --sysctl kernel.panic=1: sysctl kernel.panic is not namespaced/],
    [['--tmpfs', '/run:bogus'], /^poc: invalid --tmpfs "\/run:bogus": option "bogus"/],
    [['--shm-size', 'big'], /^poc: invalid --shm-size "big"/],
    [['--stop-signal', 'SIGNOPE'], /^poc: invalid --stop-signal "SIGNOPE"/],
    [['--security-opt', 'seccomp=/no/such.json'], /^poc: cannot read --security-opt seccomp=\/no\/such.json/],
    [['--oom-kill-disable'], /^poc: run: --oom-kill-disable is a docker run flag that poc does not support/],
    [['--cpu-shares', '512'], /^poc: run: --cpu-shares is a docker run flag that poc does not support/],
  ];
  // The ulimit case holds where CAP_SYS_RESOURCE is missing (as on the machines this was written on).
  const sysResource = (BigInt(`0x${/^CapEff:\s*(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`) >> 24n) & 1n;
  for (const [flags, message] of cases) {
    if (flags[0] === '--ulimit' && sysResource === 1n) continue; // with CAP_SYS_RESOURCE the kernel allows it
    const r = poc(['run', '--rm', '--network', 'none', ...flags, 'busybox', 'true']);
    t.equal(r.status, 1, `${flags.join(' ')}: exit 1`);
    t.match(r.stderr, message, flags.join(' '));
    t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr.trim()}`);
    t.same(residue(), clean, `${flags.join(' ')}: nothing left`);
  }
});

t.test("--user NAME and USER NAME: an image's /etc/passwd linking out of it never reads the host's file", async (t) => {
  // The host's file, with a user no image has; the images link their /etc/passwd and /etc/group at it, once by
  // an absolute link and once by a relative one that climbs with `..`.
  const hostEtc = join(work, 'host-etc');
  mkdirSync(hostEtc);
  writeFileSync(join(hostEtc, 'passwd'), 'hostonly:x:4242:4343::/home/hostonly:/bin/sh\n');
  writeFileSync(join(hostEtc, 'group'), 'hostgroup:x:4343:\n');
  const ctx = join(work, 'passwd-ctx');
  mkdirSync(ctx);
  const up = '../'.repeat(16);
  const links = { abs: hostEtc, rel: `..${join('/', up, hostEtc)}` };
  for (const [tag, dir] of Object.entries(links)) {
    writeFileSync(join(ctx, `Dockerfile.${tag}`), `FROM busybox\nRUN ln -sf ${dir}/passwd /etc/passwd && ln -sf ${dir}/group /etc/group\n`);
    const b = poc(['build', '--network', 'none', '-q', '-t', `linked-${tag}`, '-f', join(ctx, `Dockerfile.${tag}`), ctx]);
    t.equal(b.status, 0, b.stderr);
  }
  const unknown = /^poc: unable to find user hostonly: no matching entries in passwd file\n$/;
  for (const tag of Object.keys(links)) {
    const image = `linked-${tag}`;
    t.equal(ok(['run', '--rm', '--network', 'none', image, 'readlink', '/etc/passwd']).trim(), `${links[tag as keyof typeof links]}/passwd`, `${tag}: the image's link`);
    const run = poc(['run', '--rm', '--network', 'none', '--user', 'hostonly', image, 'id']);
    t.equal(run.status, 1, `${tag}: poc run --user hostonly fails`);
    t.match(run.stderr, unknown, `${tag}: run names the unknown user`);
    t.same(residue(), clean, `${tag}: nothing left`);
    // A numeric uid with no entry runs with gid 0, as docker: the host's entry (gid 4343) is not it either.
    t.equal(ok(['run', '--rm', '--network', 'none', '--user', '4242', image, 'sh', '-c', 'echo $(id -u) $(id -g)']), '4242 0\n', `${tag}: --user 4242`);
    const group = poc(['run', '--rm', '--network', 'none', '--user', '0:hostgroup', image, 'id']);
    t.match(group.stderr, /^poc: unable to find group hostgroup: no matching entries in group file\n$/, `${tag}: --user 0:hostgroup`);
    const id = ok(['run', '-d', '--network', 'none', image, 'sleep', '60']).trim();
    const exec = poc(['exec', '--user', 'hostonly', id, 'id']);
    t.equal(exec.status, 1, `${tag}: poc exec --user hostonly fails`);
    t.match(exec.stderr, unknown, `${tag}: exec names the unknown user`);
    ok(['rm', '-f', id]);
  }
  // The image's USER: taken at run time, and by a later build step (RUN, COPY --chown), from the image's files too.
  writeFileSync(join(ctx, 'Dockerfile.user'), 'FROM linked-rel\nUSER hostonly\n');
  t.equal(poc(['build', '--network', 'none', '-q', '-t', 'linked-user', '-f', join(ctx, 'Dockerfile.user'), ctx]).status, 0);
  const user = poc(['run', '--rm', '--network', 'none', 'linked-user', 'id']);
  t.equal(user.status, 1, 'USER hostonly: run fails');
  t.match(user.stderr, unknown, 'USER hostonly: the unknown user named');
  writeFileSync(join(ctx, 'Dockerfile.user-run'), 'FROM linked-abs\nUSER hostonly\nRUN id\n');
  const built = poc(['build', '--network', 'none', '-q', '-t', 'linked-user-run', '-f', join(ctx, 'Dockerfile.user-run'), ctx]);
  t.not(built.status, 0, 'USER hostonly then RUN: the build fails');
  t.match(built.stderr, /unable to find user hostonly: no matching entries in passwd file/, 'the build names the unknown user');
  t.same(residue(), clean, 'nothing left');
});

t.test("exec --user NAME: the running container's /etc/passwd, its links kept inside it", async (t) => {
  const hostEtc = join(work, 'exec-host-etc');
  mkdirSync(hostEtc);
  writeFileSync(join(hostEtc, 'passwd'), 'hostonly:x:4242:4343::/home/hostonly:/bin/sh\n');
  writeFileSync(join(hostEtc, 'group'), 'hostgroup:x:4343:\n');
  const id = ok(['run', '-d', '--network', 'none', 'busybox', 'sleep', '600']).trim();
  // A user and a group added in the container, as `useradd` would (busybox has none): docker's exec finds them.
  ok(['exec', id, 'sh', '-c', 'echo added:x:4100:4200::/:/bin/sh >> /etc/passwd; echo addedgrp:x:4200: >> /etc/group']);
  t.equal(ok(['exec', '-u', 'added', id, 'id']), 'uid=4100(added) gid=4200(addedgrp)\n', 'a user added at run time');
  t.equal(ok(['exec', '-u', '0:addedgrp', id, 'sh', '-c', 'echo $(id -u) $(id -g)']), '0 4200\n', 'a group added at run time');
  const unknown = /^poc: unable to find user hostonly: no matching entries in passwd file\n$/;
  // Links the container makes at run time, out to the host's files: resolved inside its root, never followed out.
  // (/etc itself cannot be swapped for a link here: poc binds files on it. test/unit/poc-containers.test.ts holds
  // such a directory link, and one swapped in after the walk, to the same.)
  const links = [
    ['/etc/passwd an absolute link', `ln -sf ${hostEtc}/passwd /etc/passwd`],
    ['/etc/passwd a relative link climbing with ..', `ln -sf ..${'/..'.repeat(16)}${hostEtc}/passwd /etc/passwd`],
  ];
  for (const [what, script] of links) {
    ok(['exec', id, 'sh', '-c', script!]);
    const r = poc(['exec', '-u', 'hostonly', id, 'id']);
    t.equal(r.status, 1, `${what}: exec -u hostonly fails`);
    t.match(r.stderr, unknown, `${what}: the unknown user named`);
  }
  ok(['rm', '-f', id]);
  t.same(residue(), clean, 'nothing left');
});
