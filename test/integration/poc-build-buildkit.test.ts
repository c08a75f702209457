/**
 * poc build's BuildKit features beyond the classic builder, as root, in a temporary POC_ROOT with the busybox image:
 * RUN --mount=type=tmpfs and a writable bind (what the command saw, and that nothing of either stays), cache mount
 * sharing between concurrent builds (private gets its own while another holds it; locked waits its turn, seen
 * through what each command found in the cache, not through timing), --platform and the automatic platform ARGs,
 * RUN --mount=type=ssh through a real ssh-agent, and the bad inputs (one error, nothing left behind).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { buildTar } from '../../src/poc/images/tar.js';
import { formatPlatform, hostPlatform } from '../../src/poc/registry/manifest.js';
import { POC, type PocResult } from '../helpers/poc.js';
import { buildPocIn } from '../helpers/poc-build.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'builds need root');
  process.exit(0);
}

const work = mkdtempSync('/tmp/poc-buildkit-it-');
const root = join(work, 'root');
const { env, poc, ok, residue } = buildPocIn(root);
t.teardown(() => rmSync(work, { recursive: true, force: true }));

/** A build run in the background: its end, and its standard error so far. */
function pocAsync(args: string[]): { done: Promise<PocResult>; stderr: () => string } {
  const p = spawn(POC, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => p.kill('SIGKILL'), 120_000);
  return {
    done: new Promise((resolve) => p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: out, stderr: err });
    })),
    stderr: () => err,
  };
}

/** Polls `cond` every 50 ms (up to 60 s): a step the test waits for, never a duration it assumes. */
async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const layers = () => (existsSync(join(root, 'layers')) ? readdirSync(join(root, 'layers')).sort() : []);

const ctx = join(work, 'ctx');
mkdirSync(join(ctx, 'src/sub'), { recursive: true });
writeFileSync(join(ctx, 'src/a.txt'), 'alpha\n');
writeFileSync(join(ctx, 'src/sub/b.txt'), 'beta\n');

const build = (name: string, dockerfile: string, extra: string[] = []) => {
  const file = join(ctx, `Dockerfile.${name}`);
  writeFileSync(file, dockerfile);
  return poc(['build', '--network', 'none', '-t', name, '-f', file, ...extra, ctx]);
};

t.test('RUN --mount=type=tmpfs and a writable bind: what the command saw, and nothing of either kept', async (t) => {
  const b = build('mounts', [
    // A stage only mounts read: built all the same.
    'FROM busybox AS deps',
    'RUN mkdir -p /root/.m2 && echo dep > /root/.m2/dep',
    'FROM busybox',
    'RUN --mount=type=tmpfs,target=/scratch,size=1m --mount=type=bind,source=src,target=/mnt/src,rw \\',
    "    grep ' /scratch ' /proc/mounts | cut -d' ' -f3,4 | sed 's/,.*size=/ size=/; s/,.*//' > /seen \\",
    '    && echo data > /scratch/file && cat /scratch/file >> /seen \\',
    '    && (dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>/dev/null; echo "dd: $?" >> /seen) \\',
    '    && echo changed > /mnt/src/a.txt && rm /mnt/src/sub/b.txt && cat /mnt/src/a.txt >> /seen && ls /mnt/src/sub | wc -l >> /seen',
    // One id twice in a step is one cache (a locked one does not wait for the step's own use).
    'RUN --mount=type=cache,id=twice,target=/c1 --mount=type=cache,id=twice,target=/c2,sharing=locked echo same > /c1/f && cat /c2/f >> /seen',
    // A cache seeded from a stage's directory (from=, source=), kept from step to step; a bind from that stage.
    'RUN --mount=type=cache,id=m2,target=/m2,from=deps,source=/root/.m2 cat /m2/dep >> /seen && echo more > /m2/added',
    'RUN --mount=type=cache,id=m2,target=/m2,from=deps,source=/root/.m2 --mount=type=bind,from=deps,source=/root/.m2,target=/d ls /m2 /d >> /seen',
    // The next step's bind shows the context again: the writes went with the step that made them.
    'RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/a.txt /mnt/src/sub/b.txt > /again; ls /scratch 2>> /again; true',
  ].join('\n') + '\n');
  t.equal(b.status, 0, b.stderr);
  const r = poc(['run', '--rm', '--network', 'none', 'mounts', 'sh', '-c', 'cat /seen /again; ls -d /scratch /mnt 2>&1']);
  t.equal(
    r.stdout,
    'tmpfs rw size=1024k\ndata\ndd: 1\nchanged\n0\nsame\ndep\n/d:\ndep\n\n/m2:\nadded\ndep\nalpha\nbeta\nls: /scratch: No such file or directory\n' +
      'ls: /scratch: No such file or directory\nls: /mnt: No such file or directory\n',
    `a tmpfs of 1m (a 2m write fails), a writable bind, the writes gone by the next step, no mount point kept: ${r.stderr}`,
  );
  t.equal(readFileSync(join(ctx, 'src/a.txt'), 'utf8'), 'alpha\n', "the context's file is untouched");
  t.ok(existsSync(join(ctx, 'src/sub/b.txt')), "and the context's deleted file is still there");
  t.equal(residue().join(', '), '', 'nothing left');
});

t.test('cache mount sharing between concurrent builds: shared users together, private gets its own, locked waits its turn', async (t) => {
  const cache = 'id=shr,target=/c';
  t.equal(build('seed', `FROM busybox\nRUN --mount=type=cache,${cache} echo seed > /c/seed\n`).status, 0, 'the cache seeded');
  // A holder keeps its cache until the test releases it: a file the test writes into the cache's directory.
  const hold = (name: string) =>
    `touch /c/${name}-holding && i=0; while [ ! -e /c/release ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; rm -f /c/${name}-holding`;
  const holders = () => {
    const dir = join(root, 'build-cache-mounts');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((d) => !/\.(lock|users)$/.test(d)).flatMap((d) => readdirSync(join(dir, d)).filter((f) => f.endsWith('-holding')).map((f) => join(dir, d, f)));
  };
  const release = () => {
    for (const f of holders()) writeFileSync(join(f, '../release'), '');
  };
  const start = (name: string, dockerfile: string) => {
    writeFileSync(join(ctx, `Dockerfile.${name}`), dockerfile);
    return pocAsync(['build', '--network', 'none', '-t', name, '-f', join(ctx, `Dockerfile.${name}`), ctx]);
  };
  const saw = (image: string) => ok(t, ['run', '--rm', '--network', 'none', image, 'sh', '-c', 'cat /*-saw']);

  const a = start('holder', `FROM busybox\nRUN --mount=type=cache,${cache},sharing=locked ls /c > /a-saw; ${hold('a')}\n`);
  await until('the first build to hold the cache', () => holders().length === 1);
  // private, while A holds it: a fresh, empty instance at once, which it holds in turn.
  const b = start('private', `FROM busybox\nRUN --mount=type=cache,${cache},sharing=private ls -A /c > /b-saw; ${hold('b')}\n`);
  await until('the private build to hold an instance of its own', () => holders().length === 2);
  // locked, while both are held: it waits (and says so), then runs on the first one freed.
  const c = start('locked', `FROM busybox\nRUN --mount=type=cache,${cache},sharing=locked ls /c > /c-saw\n`);
  await until('the locked build to wait', () => /waiting for the cache mount shr \(sharing=locked\)/.test(c.stderr()));
  t.equal(holders().length, 2, 'both holders still hold their instance while it waits');
  release();
  for (const r of await Promise.all([a.done, b.done, c.done])) t.equal(r.status, 0, r.stderr);
  t.equal(saw('holder'), 'seed\n', 'the first build had the seeded cache');
  t.equal(saw('private'), '', 'the private one an empty one of its own');
  t.notMatch(saw('locked'), /holding/, 'the locked one ran after a holder was done');

  // Two shared users at once, on the same instance; a locked one waits for both.
  const shared = 'id=shr2,target=/c';
  const s1 = start('shared1', `FROM busybox\nRUN --mount=type=cache,${shared} ${hold('s1')}\n`);
  await until('the first shared build to hold the cache', () => holders().length === 1);
  const s2 = start('shared2', `FROM busybox\nRUN --mount=type=cache,${shared},sharing=shared ${hold('s2')}\n`);
  await until('the second shared build to join it', () => holders().length === 2);
  t.equal(new Set(holders().map((f) => join(f, '..'))).size, 1, 'both in one directory');
  const l = start('locked2', `FROM busybox\nRUN --mount=type=cache,${shared},sharing=locked ls /c > /l-saw\n`);
  await until('the locked build to wait for the shared ones', () => /waiting for the cache mount shr2 \(sharing=locked\)/.test(l.stderr()));
  t.equal(holders().length, 2, 'the shared users still hold it while it waits');
  release();
  for (const r of await Promise.all([s1.done, s2.done, l.done])) t.equal(r.status, 0, r.stderr);
  t.equal(saw('locked2'), 'release\n', 'the locked one ran after both shared users were done');
  t.equal(residue().join(', '), '', 'no lock or use left');
});

t.test("--platform, FROM --platform and the automatic platform ARGs: this machine's works, another is refused first", async (t) => {
  const host = formatPlatform(hostPlatform());
  const [os, arch, variant = ''] = host.split('/');
  const other = arch === 'amd64' ? 'linux/arm64' : 'linux/amd64';
  const dockerfile = [
    'ARG BASE=busybox',
    'FROM --platform=$BUILDPLATFORM ${BASE} AS tools',
    'ARG TARGETPLATFORM BUILDARCH',
    'RUN echo "$TARGETPLATFORM $BUILDARCH" > /p',
    'FROM --platform=${TARGETPLATFORM} busybox',
    'ARG TARGETOS TARGETARCH TARGETVARIANT',
    'COPY --from=tools /p /p',
    // BUILDOS is not declared in this stage: empty, as buildkit's scoping.
    'RUN echo "$TARGETOS $TARGETARCH [$TARGETVARIANT] [$BUILDOS]" >> /p',
  ].join('\n') + '\n';
  for (const flags of [[], ['--platform', host], ['--platform', arch!]]) {
    const b = build('plat', dockerfile, flags);
    t.equal(b.status, 0, `${flags.join(' ')}: ${b.stderr}`);
  }
  t.equal(ok(t, ['run', '--rm', '--network', 'none', 'plat', 'cat', '/p']), `${host} ${arch}\n${os} ${arch} [${variant}] []\n`);
  t.equal(JSON.parse(ok(t, ['image', 'inspect', 'plat']))[0].Architecture, arch);

  // Another platform, however it is asked for: one error, before any step runs or anything is pulled (the image
  // named is on a registry nobody listens at: a pull would fail otherwise).
  const cases: Array<[string, string, string[], RegExp]> = [
    ['--platform', 'FROM busybox\nRUN touch /x\n', ['--platform', other], new RegExp(`^poc: build: --platform ${other}: poc builds only for this machine's platform, ${host}, not ${other} \\(it runs no emulation\\)$`, 'm')],
    ['--platform list', 'FROM busybox\n', ['--platform', `${host},${other}`], /^poc: build: --platform .*: poc builds only for this machine's platform/m],
    ['a bad --platform', 'FROM busybox\n', ['--platform', 'linux/nonesuch'], /^poc: build: --platform linux\/nonesuch: "linux\/nonesuch" is not a platform \(os\/arch\[\/variant\], as linux\/amd64\)$/m],
    ['FROM --platform in a later stage', `FROM busybox AS first\nRUN touch /x\nFROM --platform=${other} 127.0.0.1:9/nothing\nCOPY --from=first /x /x\n`, [],
      new RegExp(`^poc: .*Dockerfile\\.bad:3: FROM --platform=${other}: poc builds only for this machine's platform, ${host}, not ${other}`, 'm')],
    ['FROM --platform from an ARG', `ARG P=${other}\nFROM --platform=$P busybox\n`, [], new RegExp(`^poc: .*Dockerfile\\.bad:2: FROM --platform=\\$P: poc builds only .* not ${other}`, 'm')],
  ];
  // An image made for another architecture (a docker archive saying so) is refused as a base, before any step.
  const layer = buildTar([{ name: 'f', data: 'x\n' }]);
  const archive = buildTar([
    { name: 'manifest.json', data: JSON.stringify([{ Config: 'config.json', RepoTags: ['foreign:1'], Layers: ['layer.tar'] }]) },
    { name: 'config.json', data: JSON.stringify({ architecture: other.split('/')[1], os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(layer).digest('hex')}`] } }) },
    { name: 'layer.tar', data: layer },
  ]);
  const archivePath = join(work, 'foreign.tar');
  writeFileSync(archivePath, archive);
  ok(t, ['load', '-i', archivePath]);
  cases.push(['a base of another architecture', 'FROM foreign:1\nRUN true\n', [], new RegExp(`^poc: .*Dockerfile\\.bad:1: FROM foreign:1: the image is for ${other}, and this build for ${host}$`, 'm')]);
  for (const [what, text, flags, expected] of cases) {
    const before = layers();
    const r = build('bad', text, flags);
    t.equal(r.status, 1, `${what}: status`);
    t.match(r.stderr, expected, `${what}: ${r.stderr.trim()}`);
    if (!what.includes('architecture')) t.notMatch(r.stderr, /STEP/, `${what}: refused before any step`);
    t.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('poc:')).length, 1, `${what}: one error`);
    t.same(layers(), before, `${what}: no layer made`);
    t.equal(residue().join(', '), '', `${what}: nothing left`);
  }
});

t.test('RUN --mount=type=ssh reaches the ssh-agent given with --ssh (or one poc starts for key files), through a socket of its own', async (t) => {
  const dir = mkdtempSync('/tmp/poc-ssh-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sock = join(dir, 'agent.sock');
  const agent = spawnSync('ssh-agent', ['-a', sock], { encoding: 'utf8' });
  t.equal(agent.status, 0, agent.stderr);
  const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1]);
  t.teardown(() => process.kill(pid, 'SIGTERM'));
  const key = join(dir, 'id');
  t.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'poc-build-test', '-f', key]).status, 0);
  const agentEnv = { ...process.env, SSH_AUTH_SOCK: sock };
  t.equal(spawnSync('ssh-add', [key], { env: agentEnv }).status, 0);
  const listed = spawnSync('ssh-add', ['-l'], { encoding: 'utf8', env: agentEnv }).stdout;
  t.match(listed, /poc-build-test/);

  // The host's ssh-add with its libraries and loader, for the busybox image to run (a bind of the context).
  const tools = join(ctx, 'tools');
  mkdirSync(join(tools, 'lib'), { recursive: true });
  const ldd = spawnSync('ldd', ['/usr/bin/ssh-add'], { encoding: 'utf8' }).stdout;
  for (const m of ldd.matchAll(/(?:=> )?(\/\S+) \(0x/g)) {
    const lib = m[1]!;
    const dest = lib.includes('ld-linux') ? join(tools, 'ld.so') : join(tools, 'lib', lib.slice(lib.lastIndexOf('/') + 1));
    writeFileSync(dest, readFileSync(lib), { mode: 0o755 });
  }
  writeFileSync(join(tools, 'ssh-add'), readFileSync('/usr/bin/ssh-add'), { mode: 0o755 });
  const sshAdd = '/tools/ld.so --library-path /tools/lib /tools/ssh-add -l';
  writeFileSync(join(ctx, 'Dockerfile.ssh'), [
    'FROM busybox',
    'RUN --mount=type=bind,source=tools,target=/tools --mount=type=ssh --mount=type=ssh,id=work,target=/run/work.sock,mode=0660,uid=1000,gid=1000 \\',
    `    echo "$SSH_AUTH_SOCK" > /seen && stat -c '%a %u:%g %F' $SSH_AUTH_SOCK /run/work.sock >> /seen && ${sshAdd} >> /seen && SSH_AUTH_SOCK=/run/work.sock ${sshAdd} >> /seen`,
    'RUN --mount=type=ssh,id=absent ls /run/buildkit 2>> /seen; true',
  ].join('\n') + '\n');
  const b = poc(['build', '--network', 'none', '-t', 'ssh', '-f', join(ctx, 'Dockerfile.ssh'), '--ssh', 'default', '--ssh', `work=${key}`, ctx], { env: { ...env, SSH_AUTH_SOCK: sock } });
  t.equal(b.status, 0, b.stderr);
  t.equal(
    ok(t, ['run', '--rm', '--network', 'none', 'ssh', 'sh', '-c', 'cat /seen; ls -d /run/buildkit /run/work.sock 2>&1; true']),
    `/run/buildkit/ssh_agent.0\n600 0:0 socket\n660 1000:1000 socket\n${listed}${listed}ls: /run/buildkit: No such file or directory\n` +
      'ls: /run/buildkit: No such file or directory\nls: /run/work.sock: No such file or directory\n',
    'SSH_AUTH_SOCK set to the first, each socket with its owner and mode, the key listed through both (the agent given, and one poc started for the key file); an absent optional agent skipped; no socket kept',
  );

  const notKey = join(dir, 'not-a-key');
  writeFileSync(notKey, 'not a key\n', { mode: 0o600 });
  const locked = join(dir, 'locked');
  t.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', locked]).status, 0);
  // poc's own agents: ssh-agent processes with a socket under this POC_ROOT.
  const agentsLeft = () =>
    readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmd.startsWith('ssh-agent') && cmd.includes(root);
      } catch {
        return false;
      }
    });
  t.same(agentsLeft(), [], 'the build stopped the agent it started');
  const cases: Array<[string, string, string[], RegExp, NodeJS.ProcessEnv?]> = [
    ['a required agent not given', 'FROM busybox\nRUN --mount=type=ssh,required true\n', [], /^poc: .*Dockerfile\.bad:2: RUN --mount=type=ssh,required: no ssh agent "default" was given \(poc build --ssh default\)$/m],
    ['no SSH_AUTH_SOCK', 'FROM busybox\n', ['--ssh', 'default'], /^poc: build: --ssh default: SSH_AUTH_SOCK is not set: start an ssh-agent, or give its socket or key files \(ID=PATH\)$/m],
    ['not a key', 'FROM busybox\nRUN true\n', ['--ssh', `k=${notKey}`], /^poc: build: --ssh k=.*: ssh-add could not load the key: Error loading key ".*\/not-a-key"/m],
    ['a key with a passphrase', 'FROM busybox\nRUN true\n', ['--ssh', `k=${key},${locked}`], /^poc: build: --ssh k=.*: the key .*\/locked has a passphrase, which poc cannot ask for during a build: load it into an ssh-agent \(ssh-add\) and give its socket$/m],
    ['no such socket', 'FROM busybox\n', ['--ssh', `k=${dir}/none`], /^poc: build: --ssh k=.*: cannot use ".*\/none": ENOENT$/m],
  ];
  for (const [what, text, flags, expected] of cases) {
    const file = join(ctx, 'Dockerfile.bad');
    writeFileSync(file, text);
    const e = { ...env };
    delete e.SSH_AUTH_SOCK;
    const r = poc(['build', '--network', 'none', '-f', file, ...flags, ctx], { env: e });
    t.equal(r.status, 1, `${what}: status`);
    t.match(r.stderr, expected, `${what}: ${r.stderr.trim()}`);
    t.notMatch(r.stderr, /STEP/, `${what}: refused before any step`);
    t.equal(residue().join(', '), '', `${what}: nothing left`);
    t.same(agentsLeft(), [], `${what}: no agent left`);
  }
  rmSync(tools, { recursive: true, force: true });
});
