/**
 * poc build's pure parts, as tables: the Dockerfile checks (file:line), docker's variable substitution, config
 * instructions, the step cache key, a RUN step's config.json and the overlay options.
 */
import t from 'tap';
import { applyConfigInstruction } from '../../src/poc/build/build.js';
import { stepKey } from '../../src/poc/build/cache.js';
import { parseSecrets, parseSsh } from '../../src/poc/commands/build.js';
import { buildPlatform, platformArgs } from '../../src/poc/build/platform.js';
import { formatPlatform, parsePlatform } from '../../src/poc/registry/manifest.js';
import { copyHeredocs, onBuildTrigger, parseDockerfile, soleHeredoc } from '../../src/poc/build/dockerfile.js';
import { envLookup, expandText, expandWord, setEnv } from '../../src/poc/build/expand.js';
import { overlayMountOptions, runSpec } from '../../src/poc/build/step-fs.js';
import type { ImageConfig } from '../../src/poc/images/image-store.js';

t.test('the parser: stages, names, global ARGs, exec and shell forms, flags, continuations', async (t) => {
  const df = parseDockerfile(
    'ARG V=1\nFROM busybox:${V} AS Build\nRUN echo a \\\n  && echo b\nCOPY --chown=1:2 --from=build a b /c/\nFROM scratch\nCMD ["x", "y z"]\n',
    'Dockerfile',
  );
  t.equal(df.globalArgs.length, 1);
  t.same(df.stages.map((s) => [s.index, s.name, s.from.line]), [[0, 'build', 2], [1, null, 6]]);
  const [run, copy] = df.stages[0]!.instructions;
  t.equal(run!.keyword, 'RUN');
  t.equal(run!.json, null);
  t.match(run!.text, /^echo a\s+&& echo b$/);
  t.same(copy!.flags, { chown: '1:2', from: 'build' });
  t.same(copy!.words, ['a', 'b', '/c/']);
  t.equal(copy!.where, 'Dockerfile:5');
  t.same(df.stages[1]!.instructions[0]!.json, ['x', 'y z']);
});

t.test('bad Dockerfiles: one error naming the file and line', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['FROM a\nFOO bar\n', /^Dockerfile:2: unknown instruction FOO$/],
    ['RUN x\n', /^Dockerfile:1: RUN before the first FROM/],
    ['', /^Dockerfile: no FROM instruction/],
    ['FROM a b c d\n', /^Dockerfile:1: FROM takes an image/],
    ['FROM a AS x\nFROM b AS x\n', /^Dockerfile:2: stage name "x" is used twice$/],
    ['FROM a\nCOPY only\n', /^Dockerfile:2: COPY needs at least one source and a destination$/],
    ['FROM a\nRUN --mount=type=volume,target=/x true\n', /^Dockerfile:2: RUN --mount=type=volume,target=\/x: type=volume is not a mount type \(bind, cache, tmpfs, secret or ssh\)$/],
    ['FROM a\nRUN --mount=type=tmpfs,target=/x,size=lots true\n', /^Dockerfile:2: RUN --mount=type=tmpfs,target=\/x,size=lots: size=lots is not a size \(as 64m, 1g, 1048576\)$/],
    ['FROM a\nRUN --mount=type=tmpfs,target=/x,size=0 true\n', /size=0 is not a size/],
    ['FROM a\nRUN --mount=type=tmpfs true\n', /^Dockerfile:2: RUN --mount=type=tmpfs: needs a target \(target=\/PATH\)$/],
    ['FROM a\nRUN --mount=type=cache,target=/x,source=/y true\n', /^Dockerfile:2: RUN --mount=type=cache,target=\/x,source=\/y: source needs from \(the stage or image whose files seed the cache\)$/],
    ['FROM a\nRUN --mount=type=tmpfs,target=/x,from=y true\n', /from is not an option of a tmpfs mount \(target, size\)$/],
    ['FROM a\nRUN --mount=type=ssh,target=rel true\n', /the target rel must be an absolute path/],
    ['FROM a\nRUN --mount=type=ssh,required=maybe true\n', /required is true or false, not "maybe"$/],
    ['FROM a\nRUN --mount=type=cache true\n', /^Dockerfile:2: RUN --mount=type=cache: needs a target \(target=\/PATH\)$/],
    ['FROM a\nRUN --mount=type=cache,target=x true\n', /the target x must be an absolute path/],
    ['FROM a\nRUN --mount=type=bind,target=/x,rw=yes true\n', /rw is true or false, not "yes"$/],
    ['FROM a\nRUN --mount=type=cache,target=/x,sharing=exclusive true\n', /^Dockerfile:2: RUN --mount=type=cache,target=\/x,sharing=exclusive: sharing=exclusive: shared, private or locked$/],
    ['FROM a\nRUN --mount=type=secret,target=/x,from=y true\n', /from is not an option of a secret mount \(target, id, required, mode, uid, gid\)$/],
    ['FROM a\nRUN --mount=type=cache,target=/x,mode=999 true\n', /mode=999 is not an octal mode$/],
    ['FROM a\nCOPY --mount=type=cache,target=/x a b\n', /^Dockerfile:2: COPY does not take the flag --mount$/],
    ['FROM a\nSHELL /bin/bash\n', /^Dockerfile:2: SHELL needs a JSON array/],
    ['FROM a\nENV\n', /^Dockerfile:2: ENV needs at least one KEY=VALUE$/],
    ['FROM a\nARG 1x\n', /^Dockerfile:2: ARG invalid name "1x"$/],
    ['FROM a\nWORKDIR a b\n', /^Dockerfile:2: WORKDIR takes exactly one argument$/],
    ['FROM a\nHEALTHCHECK sometimes\n', /^Dockerfile:2: HEALTHCHECK takes NONE or CMD COMMAND$/],
    ['FROM a\nONBUILD ONBUILD RUN x\n', /^Dockerfile:2: ONBUILD ONBUILD is not allowed$/],
    ['FROM a\nONBUILD FROM b\n', /^Dockerfile:2: ONBUILD FROM is not allowed$/],
    ['FROM a\nONBUILD COPY only\n', /^Dockerfile:2: ONBUILD COPY needs at least one source and a destination$/],
    ['FROM a\nONBUILD\n', /^Dockerfile:2: ONBUILD needs an instruction$/],
    ['FROM a\nCOPY <<EOF other /x\ny\nEOF\n', /^Dockerfile:2: COPY with here-documents takes no other sources$/],
    ['FROM a\nCOPY <<EOF /x\ny\n', /^Dockerfile:2: here-document EOF has no closing EOF line$/],
  ];
  for (const [text, re] of cases) t.throws(() => parseDockerfile(text, 'Dockerfile'), re, JSON.stringify(text));
});

t.test('RUN --mount, heredocs and ONBUILD as the parser reads them', async (t) => {
  const run = (line: string) => parseDockerfile(`FROM a\n${line}\n`, 'Dockerfile').stages[0]!.instructions[0]!;
  const spec = (s: string) => ({ spec: s });
  t.same(run('RUN --mount=type=bind,source=src,target=/s --mount=type=cache,dst=/c,id=pip,mode=0700,uid=1 --mount=type=secret,id=tok make').mounts, [
    { type: 'bind', ...spec('type=bind,source=src,target=/s'), target: '/s', source: 'src', readwrite: false },
    { type: 'cache', ...spec('type=cache,dst=/c,id=pip,mode=0700,uid=1'), target: '/c', id: 'pip', sharing: 'shared', readonly: false, mode: 0o700, uid: 1, gid: 0 },
    { type: 'secret', ...spec('type=secret,id=tok'), target: '/run/secrets/tok', id: 'tok', required: false, mode: 0o400, uid: 0, gid: 0 },
  ], 'several --mount flags, buildkit defaults (a bind of the context root, a cache keyed by its target, secrets under /run/secrets)');
  t.same(run('RUN --mount=target=/x,from=build,ro true').mounts, [{ type: 'bind', spec: 'target=/x,from=build,ro', target: '/x', source: '.', from: 'build', readwrite: false }], 'type defaults to bind');
  t.match(run('RUN --mount=type=bind,target=/x,rw true').mounts[0], { readwrite: true }, 'a writable bind');
  t.match(run('RUN --mount=type=bind,target=/x,readwrite=true true').mounts[0], { readwrite: true });
  t.match(run('RUN --mount=type=bind,target=/x,ro=false true').mounts[0], { readwrite: true });
  t.match(run('RUN --mount=type=cache,target=/c,sharing=locked,ro true').mounts[0], { sharing: 'locked', readonly: true });
  t.match(run('RUN --mount=type=cache,target=/c,sharing=private true').mounts[0], { sharing: 'private', readonly: false });
  t.match(run('RUN --mount=type=cache,target=/c,from=deps,source=/root/.m2 true').mounts[0], { from: 'deps', source: '/root/.m2' });
  t.match(run('RUN --mount=type=cache,target=/c,from=deps true').mounts[0], { from: 'deps', source: '.' }, "a cache seeded from the whole of a stage's root");
  t.notOk('from' in run('RUN --mount=type=cache,target=/c true').mounts[0]!, 'an empty cache by default');
  t.same(run('RUN --mount=type=tmpfs,target=/t true').mounts, [{ type: 'tmpfs', spec: 'type=tmpfs,target=/t', target: '/t' }]);
  t.match(run('RUN --mount=type=tmpfs,target=/t,size=64m true').mounts[0], { size: 64 * 1024 * 1024 }, "go-units' RAMInBytes, binary units");
  t.match(run('RUN --mount=type=tmpfs,dst=/t,size=1.5KiB true').mounts[0], { size: 1536 });
  t.same(run('RUN --mount=type=ssh --mount=type=cache,target=/c --mount=type=ssh,id=work,required,mode=0666 true').mounts.filter((m) => m.type === 'ssh'), [
    { type: 'ssh', spec: 'type=ssh', target: '/run/buildkit/ssh_agent.0', id: 'default', required: false, mode: 0o600, uid: 0, gid: 0 },
    { type: 'ssh', spec: 'type=ssh,id=work,required,mode=0666', target: '/run/buildkit/ssh_agent.1', id: 'work', required: true, mode: 0o666, uid: 0, gid: 0 },
  ], "ssh mounts: buildkit's default id and socket paths, numbered among the RUN's ssh mounts");
  t.match(run('RUN --mount=type=cache,target=/c true').mounts[0], { id: '/c' });
  t.match(run('RUN --mount=type=secret,target=/etc/key,required true').mounts[0], { id: 'key', target: '/etc/key', required: true });
  t.equal(run('RUN --network=none --mount=type=cache,target=/c true').source, 'RUN --network=none --mount=type=cache,target=/c true');
  const cases: Array<[string, { name: string; content: string } | null]> = [
    ['<<EOF\necho a\necho b\nEOF', { name: 'EOF', content: 'echo a\necho b\n' }],
    ['<<-"EOT"\n\t\techo tabbed\n\tEOT', { name: 'EOT', content: 'echo tabbed\n' }],
    ["<<'X'\n#!/bin/sh\necho $0\nX", { name: 'X', content: '#!/bin/sh\necho $0\n' }],
    ['<<EOF bash\necho a\nEOF', null],
    ['<<A cat > a && <<B cat > b\n1\nA\n2\nB', null],
    ['echo <<EOF', null],
    ['<<EOF\necho a\n\tEOF', null],
  ];
  for (const [text, want] of cases) t.same(soleHeredoc(text), want, JSON.stringify(text));
  t.equal(run('RUN <<EOF\necho a\nEOF').text, '<<EOF\necho a\nEOF', 'the heredoc is part of the RUN (dockerfile-ast joins the lines)');
  const copy = copyHeredocs('<<A <<-"B" /dir/\na $X\nA\n\tb\n\tB', 'Dockerfile:3');
  t.same(copy && { words: copy.words, docs: [...copy.docs] }, { words: ['A', 'B', '/dir/'], docs: [['A', { content: 'a $X\n', expand: true }], ['B', { content: 'b\n', expand: false }]] });
  t.equal(copyHeredocs('a /b', 'Dockerfile:3'), null);
  t.equal(expandText('say "$X" \'${Y:-y}\' \\$X \\n', envLookup(['X=1'])), 'say "1" \'y\' $X \\n', 'quotes and other backslashes are the text\'s own');
  const trigger = onBuildTrigger('COPY --chown=1:1 a /b', 'Dockerfile:1: ONBUILD trigger 1 of image x');
  t.match(trigger, { keyword: 'COPY', flags: { chown: '1:1' }, words: ['a', '/b'], where: 'Dockerfile:1: ONBUILD trigger 1 of image x' });
  t.throws(() => onBuildTrigger('RUN --bogus=1 x', 'Dockerfile:1: ONBUILD trigger 1 of image x'), /^Dockerfile:1: ONBUILD trigger 1 of image x: ONBUILD RUN does not take the flag --bogus$/);
  const config: ImageConfig = { Env: [], Cmd: null, Entrypoint: null, WorkingDir: '/', User: '' };
  const ins = parseDockerfile('FROM x\nONBUILD RUN echo $HOME\n', 'Dockerfile').stages[0]!.instructions[0]!;
  const r = applyConfigInstruction(config, ins, envLookup([]), false);
  t.same(r.config.OnBuild, ['RUN echo $HOME'], 'kept as written, for the child build to expand');
});

t.test("variable substitution, as docker's shell lexer", async (t) => {
  const look = envLookup(['A=1', 'EMPTY=', 'P=/usr/bin'], new Map([['B', 'two']]));
  const cases: Array<[string, string]> = [
    ['$A', '1'],
    ['${A}x', '1x'],
    ['${UNSET:-dflt}', 'dflt'],
    ['${EMPTY:-dflt}', 'dflt'],
    ['${EMPTY-dflt}', ''],
    ['${A:+alt}', 'alt'],
    ['${UNSET:+alt}', ''],
    ['\\$A', '$A'],
    ["'$A'", '$A'],
    ['"$A $B"', '1 two'],
    ['$P:/x', '/usr/bin:/x'],
    ['a$', 'a$'],
    ['${UNSET:-${B}}', 'two'],
  ];
  for (const [word, want] of cases) t.equal(expandWord(word, look), want, word);
  t.throws(() => expandWord('${A', look, 'Dockerfile:3'), /^Dockerfile:3: missing \}/);
  t.throws(() => expandWord('"open', look, 'Dockerfile:3'), /unterminated " quote/);
  t.same(setEnv(['A=1', 'B=2'], 'A', '3'), ['A=3', 'B=2']);
  t.same(setEnv(['A=1'], 'C', '3'), ['A=1', 'C=3']);
});

t.test('config instructions', async (t) => {
  const base: ImageConfig = { Env: ['PATH=/bin'], Cmd: ['sh'], Entrypoint: null, WorkingDir: '/', User: '' };
  const apply = (line: string, cmdSet = false, config = base) => {
    const ins = parseDockerfile(`FROM x\n${line}\n`, 'Dockerfile').stages[0]!.instructions[0]!;
    return applyConfigInstruction(config, ins, envLookup(config.Env), cmdSet);
  };
  t.same(apply('ENV A=1 B="2 3"').config.Env, ['PATH=/bin', 'A=1', 'B=2 3']);
  t.same(apply('ENV PATH=$PATH:/x').config.Env, ['PATH=/bin:/x']);
  t.same(apply('CMD echo hi').config.Cmd, ['/bin/sh', '-c', 'echo hi']);
  t.same(apply('CMD ["a", "b"]').config.Cmd, ['a', 'b']);
  t.same(apply('ENTRYPOINT ["e"]').config, { ...base, Entrypoint: ['e'], Cmd: null }, 'an ENTRYPOINT resets an inherited CMD');
  t.same(apply('ENTRYPOINT ["e"]', true).config.Cmd, ['sh'], 'but not one set in the stage');
  t.same(apply('EXPOSE 80 53/UDP 8000-8001').config.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '8000-8001/tcp': {} });
  t.throws(() => apply('EXPOSE http'), /^Dockerfile:2: EXPOSE: invalid port "http"/);
  t.same(apply('VOLUME ["/a", "/b"]').config.Volumes, { '/a': {}, '/b': {} });
  t.same(apply('HEALTHCHECK --interval=1m30s --timeout=500ms --retries=4 CMD ["check", "x"]').config.Healthcheck, {
    Test: ['CMD', 'check', 'x'], Interval: 90e9, Timeout: 500e6, Retries: 4,
  });
  t.same(apply('HEALTHCHECK NONE').config.Healthcheck, { Test: ['NONE'] });
  t.same(apply('SHELL ["/bin/bash", "-ec"]').config.Shell, ['/bin/bash', '-ec']);
  t.same(apply('CMD echo', false, { ...base, Shell: ['/bin/bash', '-ec'] }).config.Cmd, ['/bin/bash', '-ec', 'echo'], 'CMD through the SHELL');
  t.equal(apply('USER app:app').config.User, 'app:app');
  t.equal(apply('STOPSIGNAL SIGINT').config.StopSignal, 'SIGINT');
  t.same(apply('LABEL "a b"=c d=e').config.Labels, { 'a b': 'c', d: 'e' });
  t.same(base.Env, ['PATH=/bin'], 'the config given is not changed');
});

t.test('the cache key depends on the parent and on everything a step reads', async (t) => {
  const k = stepKey('p', { ins: 'RUN x', keyInput: { env: ['A=1'] } });
  t.match(k, /^[0-9a-f]{64}$/);
  t.equal(stepKey('p', { ins: 'RUN x', keyInput: { env: ['A=1'] } }), k);
  t.not(stepKey('q', { ins: 'RUN x', keyInput: { env: ['A=1'] } }), k);
  t.not(stepKey('p', { ins: 'RUN x', keyInput: { env: ['A=2'] } }), k);
});

t.test("a RUN step's config.json and its overlay", async (t) => {
  const spec = runSpec('/m', 'poc-build-1', { args: ['/bin/sh', '-c', 'x'], env: ['A=1'], cwd: '/app', user: { uid: 1, gid: 2 }, network: 'none', where: 'D:1', source: 'RUN x' });
  t.same(spec.root, { path: '/m', readonly: false });
  t.equal(spec.process!.terminal, false);
  t.same(spec.process!.args, ['/bin/sh', '-c', 'x']);
  t.equal(spec.process!.cwd, '/app');
  t.ok(spec.linux!.namespaces!.some((n) => n.type === 'network'), 'none: a network namespace of its own');
  const host = runSpec('/m', 'i', { args: ['x'], env: [], cwd: '/', user: { uid: 0, gid: 0 }, network: 'host', where: '', source: '' });
  t.notOk(host.linux!.namespaces!.some((n) => n.type === 'network'), "host: the host's network");
  t.equal(overlayMountOptions(['/l2', '/l1'], { upper: '/u', work: '/w' }), 'lowerdir=/l2:/l1,upperdir=/u,workdir=/w,redirect_dir=off,index=off,metacopy=off');
  t.equal(overlayMountOptions(['/a', '/b']), 'lowerdir=/a:/b');
  t.throws(() => overlayMountOptions(['/a:b']), /cannot take/);
});

t.test('--secret: id=ID,src=FILE or env=VAR, read before any step; each mistake named', async (t) => {
  const files: Record<string, string> = { '/s/key': 'k3y' };
  const read = (p: string) => {
    if (!(p in files)) throw Object.assign(new Error('no'), { code: 'ENOENT' });
    return Buffer.from(files[p]!);
  };
  const got = parseSecrets(['id=a,src=/s/key', 'id=b,env=TOKEN', 'id=TOKEN,type=env', 'id=c,type=file,source=/s/key'], { TOKEN: 'tok' }, read);
  t.same(Object.fromEntries(Object.entries(got).map(([k, v]) => [k, v.toString()])), { a: 'k3y', b: 'tok', TOKEN: 'tok', c: 'k3y' });
  const bad: Array<[string, RegExp]> = [
    ['src=/s/key', /^build: --secret src=\/s\/key: needs an id/],
    ['id=a,src=/nope', /cannot read \/nope: ENOENT$/],
    ['id=a,env=UNSET', /the environment variable UNSET is not set$/],
    ['id=a', /needs src=FILE$/],
    ['id=a,src=/s/key,mode=1', /unknown field mode \(id, src, env, type\)$/],
    ['id=a,type=ssh', /type=ssh: file or env$/],
  ];
  for (const [spec, re] of bad) t.throws(() => parseSecrets([spec], {}, read), re, spec);
});

t.test("platforms as containerd parses them; a build only for this machine's; BuildKit's automatic ARGs", async (t) => {
  const amd = { os: 'linux', architecture: 'amd64' };
  const arm = { os: 'linux', architecture: 'arm64', variant: 'v8' };
  const cases: Array<[string, typeof amd, string | null]> = [
    ['linux/amd64', amd, 'linux/amd64'],
    ['amd64', amd, 'linux/amd64'],
    ['x86_64', amd, 'linux/amd64'],
    ['Linux/X86-64', amd, 'linux/amd64'],
    ['linux', amd, 'linux/amd64'],
    ['linux', arm, 'linux/arm64'],
    ['linux/aarch64', amd, 'linux/arm64'],
    ['linux/arm64/v8', amd, 'linux/arm64'],
    ['linux/arm', amd, 'linux/arm/v7'],
    ['armhf', amd, 'linux/arm/v7'],
    ['linux/arm/6', amd, 'linux/arm/v6'],
    ['i386', amd, 'linux/386'],
    ['windows/amd64', amd, 'windows/amd64'],
    ['linux/nonesuch', amd, null],
    ['plan10', amd, null],
    ['a/b/c/d', amd, null],
    ['', amd, null],
    ['linux//amd64', amd, null],
  ];
  for (const [text, host, want] of cases) {
    const p = parsePlatform(text, host);
    t.equal(p && formatPlatform(p), want, `${JSON.stringify(text)} on ${formatPlatform(host)}`);
  }
  t.same(buildPlatform('x86_64', 'build: --platform x86_64', amd), amd);
  t.same(buildPlatform('linux/arm64', 'x', arm), { os: 'linux', architecture: 'arm64' }, 'arm64 is v8 unless said otherwise');
  t.throws(() => buildPlatform('linux/arm64', 'build: --platform linux/arm64', amd), /^build: --platform linux\/arm64: poc builds only for this machine's platform, linux\/amd64, not linux\/arm64 \(it runs no emulation\)$/);
  t.throws(() => buildPlatform('linux/arm/v6', 'D:2: FROM --platform=$P', { os: 'linux', architecture: 'arm', variant: 'v7' }), /^D:2: FROM --platform=\$P: .* linux\/arm\/v7, not linux\/arm\/v6/);
  t.throws(() => buildPlatform('nope/x', 'D:1: FROM --platform=nope/x', amd), /^D:1: FROM --platform=nope\/x: "nope\/x" is not a platform \(os\/arch\[\/variant\], as linux\/amd64\)$/);
  t.same(platformArgs(amd, { os: 'linux', architecture: 'arm', variant: 'v7' }), [
    ['BUILDPLATFORM', 'linux/amd64'], ['BUILDOS', 'linux'], ['BUILDARCH', 'amd64'], ['BUILDVARIANT', ''],
    ['TARGETPLATFORM', 'linux/arm/v7'], ['TARGETOS', 'linux'], ['TARGETARCH', 'arm'], ['TARGETVARIANT', 'v7'],
  ]);
  const arg = (line: string) => parseDockerfile(`FROM a\n${line}\n`, 'Dockerfile').stages[0]!.instructions[0]!.pairs;
  t.same(arg('ARG TARGETOS TARGETARCH'), [['TARGETOS', null], ['TARGETARCH', null]], 'ARG with several names, as buildkit');
  t.same(arg('ARG A="x y" B'), [['A', 'x y'], ['B', null]]);
});

t.test('--ssh: default (SSH_AUTH_SOCK), ID=SOCKET or ID=KEYFILE,..., checked before any step; each mistake named', async (t) => {
  const fake = (p: string) => {
    const kind = ({ '/s/agent': 'socket', '/s/other': 'socket', '/s/key': 'file', '/s/key2': 'file', '/s/dir': 'dir' } as Record<string, string>)[p];
    if (!kind) throw Object.assign(new Error('no'), { code: 'ENOENT' });
    return { isSocket: () => kind === 'socket', isFile: () => kind === 'file' };
  };
  t.same(parseSsh(['default', 'work=/s/other', 'git=/s/key,/s/key2'], { SSH_AUTH_SOCK: '/s/agent' }, fake), {
    default: { socket: '/s/agent' },
    work: { socket: '/s/other' },
    git: { keys: ['/s/key', '/s/key2'] },
  });
  t.same(parseSsh(['x'], { SSH_AUTH_SOCK: '/s/agent' }, fake), { x: { socket: '/s/agent' } }, 'an id alone: the agent of SSH_AUTH_SOCK');
  const cases: Array<[string[], RegExp]> = [
    [['default'], /^build: --ssh default: SSH_AUTH_SOCK is not set: start an ssh-agent, or give its socket or key files \(ID=PATH\)$/],
    [['k=/s/none'], /^build: --ssh k=\/s\/none: cannot use "\/s\/none": ENOENT$/],
    [['k=/s/dir'], /^build: --ssh k=\/s\/dir: \/s\/dir is neither an ssh agent's socket nor a key file$/],
    [['k=/s/agent,/s/other'], /one agent's socket, or key files, per id$/],
    [['k=/s/agent,/s/key'], /one agent's socket, or key files, per id$/],
    [['a b=/s/agent'], /the id is letters, digits and \._-/],
    [['w=/s/agent', 'w=/s/other'], /^build: --ssh w=\/s\/other: the id w is given twice$/],
  ];
  for (const [list, re] of cases) t.throws(() => parseSsh(list, {}, fake), re, list.join(' '));
});
