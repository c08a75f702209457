/**
 * poc build and the image workflow as a user types them, as root, in a temporary POC_ROOT with the busybox
 * image: every instruction seen in the result (the files in a container, the config in `image inspect`), the
 * cache (an unchanged rebuild runs nothing and gives the same image; a changed file re-runs from its COPY on,
 * seen through a uuid a RUN writes, not through timing), bad Dockerfiles (file:line, nothing left behind), and
 * save/load: what `poc save` writes, podman (a private store) loads and runs with runc, and poc loads back.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { buildTar } from '../../src/poc/images/tar.js';
import { startRegistry } from '../helpers/registry.js';
import { POC } from '../helpers/poc.js';
import { buildPocIn } from '../helpers/poc-build.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'builds need root');
  process.exit(0);
}

const work = mkdtempSync('/tmp/poc-build-it-');
const root = join(work, 'root');
const { env, poc, ok, residue } = buildPocIn(root);
t.teardown(() => rmSync(work, { recursive: true, force: true }));

const layers = () => (existsSync(join(root, 'layers')) ? readdirSync(join(root, 'layers')).sort() : []);
const images = () => JSON.parse(ok(t, ['images', '--format', 'json'])) as Array<{ id: string; name: string | null }>;

const ctx = join(work, 'ctx');
mkdirSync(join(ctx, 'src/sub'), { recursive: true });
writeFileSync(join(ctx, 'src/a.txt'), 'alpha\n');
writeFileSync(join(ctx, 'src/sub/b.txt'), 'beta\n');
writeFileSync(join(ctx, 'src/skip.log'), 'ignored\n');
writeFileSync(join(ctx, 'counter'), '1\n');
writeFileSync(join(ctx, 'secret.key'), 'never copied\n');
writeFileSync(join(ctx, '.dockerignore'), '*.key\n**/*.log\n');
writeFileSync(join(ctx, 'bundle.tar'), buildTar([{ name: 'unpacked/', type: 'dir' }, { name: 'unpacked/inside', data: 'from the tar\n', uid: 7, gid: 8 }]));
writeFileSync(
  join(ctx, 'Dockerfile'),
  `# every instruction, two stages
ARG BASE=busybox
FROM \${BASE} AS builder
RUN cat /proc/sys/kernel/random/uuid > /uuid-before && echo built > /built
COPY counter /counter
RUN cat /proc/sys/kernel/random/uuid > /uuid-after

FROM \${BASE}
ARG GREETING=hello
ENV APP=/app NAME="poc build"
WORKDIR $APP
COPY --from=builder /built /uuid-before /uuid-after ./
COPY --chown=1000:1000 src/ ./src/
COPY src/*.txt ./top/
ADD bundle.tar /opt/
SHELL ["/bin/sh", "-c"]
RUN echo "$GREETING $NAME" > greeting && rm /etc/group- 2>/dev/null; rm -r /home && mkdir -p /var/empty-made
RUN ["/bin/sh", "-c", "echo exec form > /exec-form"]
USER 1000
EXPOSE 8080 53/udp
LABEL org.example.test="yes it is" stage=final
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD true
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat greeting"]
`,
);

let firstId = '';

t.test('a two-stage build with every instruction: the files and the config', async (t) => {
  const before = layers();
  const r = poc(['build', '-t', 'demo:1', '--build-arg', 'GREETING=hi', ctx]);
  t.equal(r.status, 0, r.stderr);
  firstId = r.stdout.trim();
  t.match(firstId, /^[0-9a-f]{64}$/);
  t.notMatch(r.stderr, /Using cache/, 'a first build runs every step');
  t.ok(layers().length > before.length, 'layers stored');
  t.equal(ok(t, ['run', '--rm', 'demo:1']), 'hi poc build\n', 'ENTRYPOINT + CMD, ARG from --build-arg, ENV, WORKDIR');
  const out = ok(t, ['run', '--rm', 'demo:1', [
    'id -u; pwd; cat built exec-form 2>&1; cat /exec-form; ls src; stat -c "%u:%g %n" src/a.txt src/sub/b.txt',
    'ls top; ls /opt/unpacked; stat -c "%u:%g" /opt/unpacked/inside; cat /opt/unpacked/inside',
    'ls /home 2>&1; ls -d /var/empty-made; ls /uuid-before /counter 2>&1; echo $NAME',
  ].join('; ')]);
  const lines = out.split('\n');
  t.equal(lines[0], '1000', 'USER');
  t.equal(lines[1], '/app', 'WORKDIR');
  t.match(out, /^built$/m, 'COPY --from=builder');
  t.match(out, /^exec form$/m, 'RUN in exec form');
  t.match(out, /^a\.txt\nsub\n/m, 'COPY of a directory copies its contents; .dockerignore left out skip.log');
  t.match(out, /^1000:1000 src\/a\.txt\n1000:1000 src\/sub\/b\.txt$/m, 'COPY --chown');
  t.match(out, /^a\.txt$/m, 'COPY with a glob');
  t.match(out, /^inside\n7:8\nfrom the tar$/m, 'ADD unpacked the local tar, owners kept');
  t.match(out, /ls: \/home: No such file or directory/, 'a deletion in a RUN (whiteout) is seen');
  t.match(out, /^\/var\/empty-made$/m);
  t.match(out, /ls: \/uuid-before: No such file or directory\nls: \/counter: No such file or directory/, 'the builder stage stays out of the final image');
  t.match(out, /^poc build$/m, 'ENV');
  t.notOk(out.includes('never copied'));

  const [inspect] = JSON.parse(ok(t, ['image', 'inspect', 'demo:1'])) as Array<Record<string, any>>;
  const c = inspect!.Config;
  t.same(c.Entrypoint, ['/bin/sh', '-c']);
  t.same(c.Cmd, ['cat greeting']);
  t.equal(c.User, '1000');
  t.equal(c.WorkingDir, '/app');
  t.ok(c.Env.includes('APP=/app') && c.Env.includes('NAME=poc build'), 'Env');
  t.notOk(c.Env.some((e: string) => e.startsWith('GREETING=')), 'an ARG is not kept in the image');
  t.same(c.ExposedPorts, { '8080/tcp': {}, '53/udp': {} });
  t.same(c.Labels, { 'org.example.test': 'yes it is', stage: 'final' });
  t.same(c.Volumes, { '/data': {} });
  t.equal(c.StopSignal, 'SIGINT');
  t.same(c.Shell, ['/bin/sh', '-c']);
  t.same(c.Healthcheck, { Test: ['CMD-SHELL', 'true'], Interval: 5e9, Retries: 2 });
  t.equal(inspect!.RootFS.Layers.length, 8, 'the base, WORKDIR, three COPY, ADD, two RUN: config steps make no layer');
  t.equal(residue().join(', '), '', 'nothing left of the steps');
});

t.test('an unchanged rebuild comes from the cache and gives the same image; a changed file re-runs from its COPY', async (t) => {
  const uuids = () => ok(t, ['run', '--rm', '--entrypoint', '', 'demo:1', 'cat', '/app/uuid-before', '/app/uuid-after']);
  const first = uuids();
  const r = poc(['build', '-t', 'demo:1', '--build-arg', 'GREETING=hi', ctx]);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), firstId, 'the same image');
  t.match(r.stderr, /\(0 steps run, \d+ from the cache\)/, 'nothing ran');
  t.equal(uuids(), first);

  writeFileSync(join(ctx, 'counter'), '2\n');
  const r2 = poc(['build', '-t', 'demo:2', '--build-arg', 'GREETING=hi', ctx]);
  t.equal(r2.status, 0, r2.stderr);
  t.not(r2.stdout.trim(), firstId);
  const [before1, after1] = first.split('\n');
  const [before2, after2] = uuids().split('\n');
  t.equal(after2, after1);
  t.equal(before1, before2, 'demo:1 is unchanged');
  const changed = ok(t, ['run', '--rm', '--entrypoint', '', 'demo:2', 'cat', '/app/uuid-before', '/app/uuid-after']).split('\n');
  t.equal(changed[0], before1, 'the RUN before the COPY came from the cache');
  t.not(changed[1], after1, 'the RUN after the changed COPY ran again');

  const r3 = poc(['build', '--no-cache', '-t', 'demo:3', '--build-arg', 'GREETING=hi', ctx]);
  t.equal(r3.status, 0, r3.stderr);
  t.match(r3.stderr, /\(\d+ steps run, 0 from the cache\)/, '--no-cache');
  t.equal(residue().join(', '), '');
});

t.test('--target builds a stage; history lists the steps', async (t) => {
  const r = poc(['build', '-q', '--target', 'builder', '-t', 'builder-only', ctx]);
  t.equal(r.status, 0, r.stderr);
  t.equal(ok(t, ['run', '--rm', 'builder-only', 'cat', '/built', '/counter']), 'built\n2\n');
  const h = JSON.parse(ok(t, ['history', '--format', 'json', 'builder-only'])) as Array<{ createdBy: string; size: number }>;
  t.match(h[0]!.createdBy, /RUN .*uuid-after/);
  t.match(h[1]!.createdBy, /^COPY counter \/counter/);
  t.ok(h[0]!.size > 0);
  t.match(ok(t, ['history', 'builder-only']), /CREATED BY/);
});

t.test("buildkit's additions: RUN and COPY heredocs, RUN --mount (bind, cache, secret), ONBUILD", async (t) => {
  const secret = join(work, 'token.txt');
  writeFileSync(secret, 's3cr3t');
  writeFileSync(
    join(ctx, 'Dockerfile.kit'),
    [
      'FROM busybox AS parent',
      'ONBUILD RUN echo "trigger ran" > /onbuild',
      'ONBUILD COPY src/a.txt /from-trigger',
      'FROM busybox',
      'RUN <<EOF',
      'echo one > /heredoc',
      'echo two >> /heredoc',
      'EOF',
      'RUN <<-EOT',
      '\t#!/bin/sh',
      '\techo "script $0" > /script',
      '\tEOT',
      'ARG WHO=world',
      'COPY <<EOF /etc/greeting',
      'hello $WHO',
      'EOF',
      'COPY <<-"RAW" <<B /files/',
      '\traw $WHO',
      '\tRAW',
      'b',
      'B',
      'RUN <<A cat > /a && <<B cat > /b',
      'first',
      'A',
      'second',
      'B',
      // The bind shows the context as a COPY reads it (.dockerignore applies); nothing of the mounts stays.
      'RUN --mount=type=bind,source=src,target=/mnt/src --mount=type=cache,target=/var/cache/kit --mount=type=secret,id=tok \\',
      '    ls /mnt/src > /bound && echo x >> /var/cache/kit/runs && wc -l < /var/cache/kit/runs > /runs && cat /run/secrets/tok > /secret-seen',
    ].join('\n') + '\n',
  );
  const b = poc(['build', '--network', 'none', '-t', 'kit', '-f', join(ctx, 'Dockerfile.kit'), '--secret', `id=tok,src=${secret}`, ctx]);
  t.equal(b.status, 0, b.stderr);
  const r = poc(['run', '--rm', '--network', 'none', 'kit', 'sh', '-c', 'cat /heredoc /script /etc/greeting /files/RAW /files/B /a /b /bound /runs /secret-seen; echo; ls -d /mnt /var/cache /run/secrets 2>&1']);
  t.equal(
    r.stdout,
    'one\ntwo\nscript /dev/pipes/EOT\nhello world\nraw $WHO\nb\nfirst\nsecond\na.txt\nsub\n1\ns3cr3t\n' +
      'ls: /mnt: No such file or directory\nls: /var/cache: No such file or directory\nls: /run/secrets: No such file or directory\n',
    `the heredocs ran; the bind skipped the ignored log; no mount point left in the image: ${r.stderr}`,
  );
  // --no-cache runs the RUN again: the cache mount kept its file from the first build.
  const again = poc(['build', '--network', 'none', '--no-cache', '-t', 'kit2', '-f', join(ctx, 'Dockerfile.kit'), '--secret', `id=tok,src=${secret}`, ctx]);
  t.equal(again.status, 0, again.stderr);
  t.equal(poc(['run', '--rm', '--network', 'none', 'kit2', 'cat', '/runs']).stdout, '2\n', 'the cache mount persists between builds');

  // ONBUILD: recorded in the parent's config, run by a build FROM it (not by the parent's own stage), not passed on.
  t.equal(poc(['build', '--network', 'none', '-t', 'kit-parent', '--target', 'parent', '-f', join(ctx, 'Dockerfile.kit'), ctx]).status, 0);
  const inspect = JSON.parse(ok(t, ['image', 'inspect', 'kit-parent']))[0];
  t.same(inspect.Config.OnBuild, ['RUN echo "trigger ran" > /onbuild', 'COPY src/a.txt /from-trigger']);
  writeFileSync(join(ctx, 'Dockerfile.child'), 'FROM kit-parent\nRUN cat /onbuild /from-trigger > /seen\n');
  const child = poc(['build', '--network', 'none', '-t', 'kit-child', '-f', join(ctx, 'Dockerfile.child'), ctx]);
  t.equal(child.status, 0, child.stderr);
  t.match(child.stderr, /ONBUILD trigger 1 of image kit-parent: RUN echo/);
  t.equal(poc(['run', '--rm', '--network', 'none', 'kit-child', 'cat', '/seen']).stdout, 'trigger ran\nalpha\n');
  t.notOk(JSON.parse(ok(t, ['image', 'inspect', 'kit-child']))[0].Config.OnBuild, 'the triggers are not passed on');

  const missing = poc(['build', '-f', join(ctx, 'Dockerfile.kit'), ctx]);
  t.equal(missing.status, 0, `an absent secret that is not required is skipped: ${missing.stderr}`);
  writeFileSync(join(ctx, 'Dockerfile.req'), 'FROM busybox\nRUN --mount=type=secret,id=tok,required=true true\n');
  const req = poc(['build', '-f', join(ctx, 'Dockerfile.req'), ctx]);
  t.equal(req.status, 1);
  t.match(req.stderr, /^poc: .*\/Dockerfile\.req:2: RUN --mount=type=secret,id=tok,required=true: no secret "tok" was given \(poc build --secret id=tok,src=FILE\)$/m);
  t.equal(residue().join(', '), '', 'nothing left');
});

t.test('bad Dockerfiles: one clear error with file:line, and nothing left', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['unknown instruction', 'FROM busybox\nRUNN true\n', /^poc: Dockerfile:2: unknown instruction RUNN$/m],
    ['nothing before FROM', 'RUN true\n', /^poc: Dockerfile:1: RUN before the first FROM/m],
    ['no FROM', '# empty\n', /no FROM instruction/],
    ['unknown image', 'FROM no-such-image\nRUN true\n', /^poc: Dockerfile:1: FROM no-such-image: no such image: no-such-image/m],
    ['failing RUN', 'FROM busybox\nENV A=1\nRUN echo out; exit 3\n', /^poc: Dockerfile:3: RUN echo out; exit 3: the command exited with status 3$/m],
    ['missing COPY source', 'FROM busybox\nCOPY nothere /x\n', /^poc: Dockerfile:2: "nothere" not found in the build context$/m],
    ['bad flag', 'FROM busybox\nCOPY --chmown=1 counter /x\n', /^poc: Dockerfile:2: COPY does not take the flag --chmown$/m],
    ['ignored source', 'FROM busybox\nCOPY secret.key /x\n', /"secret.key" not found in the build context/],
    ['several sources, file destination', 'FROM busybox\nCOPY counter bundle.tar /x\n', /^poc: Dockerfile:2: COPY with more than one source: the destination \/x must be a directory ending in \//m],
    ['bad HEALTHCHECK', 'FROM busybox\nHEALTHCHECK --interval=5 CMD true\n', /^poc: Dockerfile:2: HEALTHCHECK --interval: invalid duration "5"/m],
    ['COPY --from its own stage', 'FROM busybox AS a\nCOPY --from=a /x /x\n', /^poc: Dockerfile:2: COPY --from=a: a stage can only copy from an earlier stage/m],
  ];
  for (const [what, text, expected] of cases) {
    const file = join(work, `bad-${what.replace(/\W+/g, '-')}`);
    writeFileSync(file, text);
    const layersBefore = layers();
    const imagesBefore = images().length;
    const r2 = poc(['build', '-f', file, '-t', 'bad', ctx]);
    t.equal(r2.status, 1, `${what}: status`);
    t.match(r2.stderr.replace(file, 'Dockerfile'), expected, `${what}: ${r2.stderr.trim()}`);
    t.equal(r2.stderr.trim().split('\n').filter((l) => l.startsWith('poc:')).length, 1, `${what}: one error`);
    t.same(layers(), layersBefore, `${what}: no layer left`);
    t.equal(images().length, imagesBefore, `${what}: no image`);
    t.equal(residue().join(', '), '', `${what}: no mount, scratch directory or container`);
  }
});

t.test('tag, save in both formats with several images, podman loads and runs it, poc loads it back', async (t) => {
  ok(t, ['tag', 'demo:1', 'demo:tagged']);
  t.equal(ok(t, ['run', '--rm', 'demo:tagged']), 'hi poc build\n');
  const dockerArchive = join(work, 'demo.tar');
  const ociArchive = join(work, 'demo-oci.tar');
  ok(t, ['save', '-o', dockerArchive, 'demo:1', 'builder-only']);
  ok(t, ['save', '--format', 'oci-archive', '-o', ociArchive, 'demo:1', 'builder-only']);
  const listing = spawnSync('tar', ['tf', dockerArchive], { encoding: 'utf8' }).stdout;
  t.match(listing, /^manifest\.json$/m);
  const manifest = JSON.parse(spawnSync('tar', ['xOf', dockerArchive, 'manifest.json'], { encoding: 'utf8' }).stdout) as Array<{ RepoTags: string[]; Layers: string[] }>;
  t.same(manifest.map((m) => m.RepoTags), [['demo:1'], ['builder-only:latest']]);
  const shared = manifest[0]!.Layers[0];
  t.equal(listing.split('\n').filter((l) => l === shared).length, 1, 'a layer both images share is written once');

  // podman, in a store of its own, with runc.
  const pm = ['--root', join(work, 'podman/root'), '--runroot', join(work, 'podman/run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  const podman = (args: string[]) => spawnSync('podman', [...pm, ...args], { encoding: 'utf8', timeout: 120_000 });
  const run = ['run', '--rm', '--pull', 'never', '--runtime', 'runc', '--network', 'none', '--no-healthcheck', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];
  // podman 4 loads one image of an OCI archive: a second archive with demo:1 alone.
  const ociSingle = join(work, 'demo-oci-1.tar');
  ok(t, ['save', '--format', 'oci-archive', '-o', ociSingle, 'demo:1']);
  for (const archive of [dockerArchive, ociSingle]) {
    const l = podman(['load', '-i', archive]);
    t.equal(l.status, 0, l.stderr);
    const r = podman([...run, 'localhost/demo:1']);
    t.equal(r.stdout, 'hi poc build\n', `podman runs the image from ${archive}: ${r.stderr}`);
    const r2 = podman([...run, '--entrypoint', 'sh', 'localhost/demo:1', '-c', 'id -u; stat -c %u:%g /app/src/a.txt; ls /home 2>&1; cat /opt/unpacked/inside']);
    t.equal(r2.stdout, '1000\n1000:1000\nls: /home: No such file or directory\nfrom the tar\n', `owners and whiteouts through podman: ${r2.stderr}`);
    podman(['rmi', '-a', '-f']);
  }
  podman(['system', 'reset', '-f']);

  // poc load, into a fresh store.
  const fresh = { ...env, POC_ROOT: join(work, 'fresh') };
  for (const archive of [dockerArchive, ociArchive]) {
    // The docker archive from a file, the OCI one on standard input.
    const l =
      archive === dockerArchive
        ? spawnSync(POC, ['load', '-i', archive], { encoding: 'utf8', env: fresh })
        : spawnSync(POC, ['load'], { encoding: 'utf8', env: fresh, input: readFileSync(archive) });
    t.equal(l.status, 0, l.stderr);
    t.match(l.stdout, /Loaded image: demo:1\nLoaded image: builder-only\n/, `${archive}: ${l.stderr}`);
    const r = spawnSync(POC, ['run', '--rm', 'demo:1'], { encoding: 'utf8', env: fresh });
    t.equal(r.stdout, 'hi poc build\n', r.stderr);
  }
});

t.test('a container: diff, commit (with -c), cp both ways, export; image prune, system df', async (t) => {
  ok(t, ['run', '--name', 'changer', 'busybox', 'sh', '-c', 'echo new > /newfile; rm /etc/group; mkdir -p /srv/x; echo data > /srv/x/f']);
  t.equal(ok(t, ['diff', 'changer']), 'C /etc\nD /etc/group\nA /newfile\nA /srv\nA /srv/x\nA /srv/x/f\n');
  const id = ok(t, ['commit', '-c', 'CMD ["cat", "/newfile"]', '-c', 'ENV COMMITTED=yes', '-m', 'a message', 'changer', 'committed:1']).trim();
  t.match(id, /^[0-9a-f]{64}$/);
  t.equal(ok(t, ['run', '--rm', 'committed:1']), 'new\n', 'the change and -c CMD');
  t.equal(ok(t, ['run', '--rm', 'committed:1', 'sh', '-c', 'ls /etc/group 2>&1; cat /srv/x/f; echo $COMMITTED']), 'ls: /etc/group: No such file or directory\ndata\nyes\n');
  const h = JSON.parse(ok(t, ['history', '--format', 'json', 'committed:1'])) as Array<{ createdBy: string; comment: string }>;
  t.equal(h[0]!.createdBy, 'poc commit changer');
  t.equal(h[0]!.comment, 'a message');

  const out = join(work, 'cp-out');
  mkdirSync(out);
  ok(t, ['cp', 'changer:/srv/x', out]);
  t.equal(readFileSync(join(out, 'x/f'), 'utf8'), 'data\n', 'out of a stopped container');
  writeFileSync(join(work, 'hostfile'), 'from the host\n');
  ok(t, ['cp', join(work, 'hostfile'), 'changer:/srv/']);
  ok(t, ['start', 'changer']);
  ok(t, ['wait', 'changer']);
  const exported = join(work, 'changer.tar');
  ok(t, ['export', '-o', exported, 'changer']);
  const listing = spawnSync('tar', ['tf', exported], { encoding: 'utf8' }).stdout.split('\n');
  t.ok(listing.includes('srv/hostfile') && listing.includes('newfile') && !listing.includes('etc/group'), 'export: the container as it is, cp into it included');
  t.equal(spawnSync('tar', ['xOf', exported, 'srv/hostfile'], { encoding: 'utf8' }).stdout, 'from the host\n');
  const bad = poc(['cp', join(work, 'hostfile'), 'changer:/no/such/dir/']);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /no such directory in container changer/);
  ok(t, ['rm', 'changer']);

  t.match(ok(t, ['system', 'df']), /^Images\s+\d+/m);
  ok(t, ['rmi', 'committed:1']);
  const layersBefore = layers().length;
  t.match(ok(t, ['image', 'prune']), /Total reclaimed space/);
  t.ok(layers().length < layersBefore, "the committed image's layer went with it");
  ok(t, ['builder', 'prune']);
  t.equal(residue().join(', '), '');
});

t.test("--network bridge: a RUN step on poc's network, the address released after", async (t) => {
  const netctx = join(work, 'netctx');
  mkdirSync(netctx);
  writeFileSync(
    join(netctx, 'Dockerfile'),
    'FROM busybox\nRUN ip -4 addr show eth0 | grep -q "inet 10\\." && GW=$(ip route | awk \'/default/ {print $3}\') && ping -c1 -W5 $GW >/dev/null && echo reached > /reached\n',
  );
  // A container's rules live in its nftables chain ctr_<hash>: the step's must go with it.
  const chains = () => (spawnSync('nft', ['list', 'table', 'ip', 'poc'], { encoding: 'utf8' }).stdout.match(/chain ctr_[0-9a-f]+/g) ?? []).sort();
  const before = chains();
  const r = poc(['build', '--network', 'bridge', '-t', 'net', netctx]);
  t.equal(r.status, 0, r.stderr);
  t.same(chains(), before, "no nftables chain of the step's left");
  t.notMatch(r.stderr, /warning/);
  t.equal(ok(t, ['run', '--rm', 'net', 'cat', '/reached']), 'reached\n', 'the step had an address and reached the gateway');
  const state = JSON.parse(readFileSync(join(root, 'network/state.json'), 'utf8')) as { containers?: Record<string, unknown> };
  t.same(Object.keys(state.containers ?? {}), [], 'no address left allocated');
  const none = poc(['build', '--no-cache', '--network', 'none', '-t', 'net2', netctx]);
  t.equal(none.status, 1, '--network none: no way out');
  t.match(none.stderr, /^poc: Dockerfile:2: RUN .*: the command exited with status 1$/m);
  t.equal(residue().join(', '), '');

  // Whether the image has /etc/hosts and /etc/resolv.conf (poc's are bound over them on the bridge) is asked of the
  // image, its links resolved within it: a link out of it names the image's file, never the host's.
  const hostOnly = join(work, 'host-only-resolv.conf'); // on the host, not in the image
  writeFileSync(hostOnly, 'nameserver 192.0.2.1\n');
  // Made without a network (on the bridge a step's own /etc files are bound, and cannot be replaced).
  writeFileSync(join(netctx, 'Dockerfile.links-base'),
    `FROM busybox\nRUN mkdir /elsewhere && : > /elsewhere/hosts && ln -sf /elsewhere/hosts /etc/hosts && ln -sf ${hostOnly} /etc/resolv.conf\n`);
  const base = poc(['build', '--network', 'none', '-t', 'net-links-base', '-f', join(netctx, 'Dockerfile.links-base'), netctx]);
  t.equal(base.status, 0, base.stderr);
  writeFileSync(join(netctx, 'Dockerfile.links'),
    `FROM net-links-base\nRUN cat /etc/hosts > /seen-hosts; cat /etc/resolv.conf > /seen-resolv 2>&1 || echo absent > /seen-resolv; ls ${work} > /seen-made 2>&1 || :\n`);
  const links = poc(['build', '--network', 'bridge', '-t', 'net-links', '-f', join(netctx, 'Dockerfile.links'), netctx]);
  t.equal(links.status, 0, links.stderr);
  // (Read by a container of poc run, which binds its own /etc files, as docker does: the step's view is in the files.)
  const seen = ok(t, ['run', '--rm', '--network', 'none', 'net-links', 'sh', '-c', 'cat /seen-hosts; echo --; cat /seen-resolv; echo --; cat /seen-made']);
  const [hosts, resolv, made] = seen.split('--\n');
  t.match(hosts, /\bpoc-build\b/, "/etc/hosts linking to the image's /elsewhere/hosts: the image has it, poc's was bound on it");
  t.equal(resolv, 'absent\n', '/etc/resolv.conf linking to a file of the host alone: the image has none, nothing was bound');
  t.match(made, /No such file or directory/, 'and no mount point for it was made in the step');
  t.equal(residue().join(', '), '');
});

t.test("RUN --mount's mount points are removed inside the image, never through a link the command made", async (t) => {
  const victim = join(work, 'victim');
  mkdirSync(join(victim, 'b'), { recursive: true }); // an empty directory of the host's, where the link will point
  const lctx = join(work, 'stubctx');
  mkdirSync(lctx);
  // /a/b is made for the mount; the command then moves /a away and puts a link to the host's directory there.
  writeFileSync(join(lctx, 'Dockerfile'), `FROM busybox\nRUN --mount=type=cache,target=/a/b mv /a /a.old && ln -s ${victim} /a\n`);
  const r = poc(['build', '--network', 'none', '-t', 'stubs', lctx]);
  t.equal(r.status, 0, r.stderr);
  t.ok(existsSync(join(victim, 'b')), "the host's directory is left alone");
  t.equal(ok(t, ['run', '--rm', '--network', 'none', 'stubs', 'sh', '-c', 'readlink /a; ls -a /a.old']), `${victim}\n.\n..\nb\n`,
    "the image keeps the command's link, and the moved mount point (no longer the path it was made at)");
  t.equal(residue().join(', '), '');
});

t.test('build, push, pull, run: FROM an image that is pulled first, the result pushed and pulled elsewhere', async (t) => {
  // A plain-HTTP registry of this test's own on 127.0.0.1, marked insecure in a registries.conf of its own.
  const reg = await startRegistry(join(work, 'registry'));
  t.teardown(() => reg.stop());
  const conf = join(work, 'registries.conf');
  writeFileSync(conf, `[[registry]]\nlocation = "${reg.host}"\ninsecure = true\n`);
  const renv = { ...env, CONTAINERS_REGISTRIES_CONF: conf, HOME: work, XDG_RUNTIME_DIR: join(work, 'xdg') };
  const p = (args: string[], root2 = root) => spawnSync(POC, args, { encoding: 'utf8', timeout: 120_000, env: { ...renv, POC_ROOT: root2 } });
  const push = p(['push', 'busybox', `${reg.host}/lib/base:1`]);
  t.equal(push.status, 0, push.stderr);

  const other = join(work, 'other-root');
  const ctx2 = join(work, 'pushctx');
  mkdirSync(ctx2);
  writeFileSync(join(ctx2, 'Dockerfile'), `FROM ${reg.host}/lib/base:1\nRUN echo pushed > /pushed\nCMD ["cat", "/pushed"]\n`);
  const b = p(['build', '-t', `${reg.host}/lib/app:1`, ctx2], other);
  t.equal(b.status, 0, `the base is pulled by the build: ${b.stderr}`);
  const up = p(['push', `${reg.host}/lib/app:1`], other);
  t.equal(up.status, 0, up.stderr);
  const third = join(work, 'third-root');
  const run = p(['run', '--rm', `${reg.host}/lib/app:1`], third);
  t.equal(run.stdout, 'pushed\n', `pulled on run: ${run.stderr}`);
});
