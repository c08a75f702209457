#!/usr/bin/env node
// Build benchmark, in one run: a 10-step, two-stage Dockerfile on the Debian image (RUN, COPY of a source tree of
// 1000 files, COPY --from) built by `poc build` and by `buildah bud --layers`, each cold (an empty cache, the base
// image already in the store) and then again unchanged (everything from the cache). Prints the medians and the
// ratios: poc cold / buildah cold (target ≤ 1.0) and poc rebuild / poc cold (target ≤ 0.2).
//
// usage: node bench/build.mjs [--reps N] [--image NAME]
//
// The base: the image NAME (default debian, made by `poc init`) of the default POC_ROOT, saved once with
// `poc save` and loaded into each store: a fresh POC_ROOT and a fresh buildah --root for every repetition
// (untimed), so that neither tool has a cache or a layer of the build's; each store holds the base's layer as
// its load left it (buildah's pull unpacks it; poc load takes the digest of the image's files). Both run RUN steps
// with a runtime (pocrun; buildah's OCI isolation with runc: crun refuses this host's hybrid cgroups) and no network. The tools take turns.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const reps = Number(flag('--reps', 3));
const image = flag('--image', 'debian');
const POC = join(top, 'dist/poc');
const work = mkdtempSync('/var/tmp/poc-bench-build-');
/** Every mount under dir (buildah's store mounts its overlay and its containers'), deepest first. */
function unmountUnder(dir) {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m) => m && m.startsWith(`${dir}/`));
  for (const m of mounts.sort().reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
}
process.on('exit', () => {
  unmountUnder(work);
  rmSync(work, { recursive: true, force: true });
});

function run(argv, opts = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 1 << 26, ...opts });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}
function timed(argv, opts) {
  const t0 = process.hrtime.bigint();
  run(argv, opts);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// The context: a source tree and the Dockerfile.
const ctx = join(work, 'ctx');
for (let d = 0; d < 20; d++) {
  mkdirSync(join(ctx, 'src', `mod${d}`), { recursive: true });
  for (let f = 0; f < 50; f++) {
    const body = Array.from({ length: 40 }, (_, i) => `int f_${d}_${f}_${i}(int x) { return x * ${i} + ${d * f}; }`).join('\n');
    writeFileSync(join(ctx, 'src', `mod${d}`, `file${f}.c`), `${body}\n`);
  }
}
writeFileSync(
  join(ctx, 'Dockerfile'),
  `FROM ${image} AS build
WORKDIR /src
COPY src/ ./
RUN find . -name '*.c' | sort | xargs cat > /all.c && wc -l < /all.c > /lines
RUN python3 -c "import hashlib; print(hashlib.sha256(open('/all.c','rb').read()).hexdigest())" > /digest
FROM ${image}
ENV APP=/app
WORKDIR /app
COPY --from=build /all.c /lines /digest ./
RUN useradd -m app && chown -R app /app && rm -rf /var/cache/debconf/*-old
USER app
CMD ["cat", "lines", "digest"]
`,
);

const baseArchive = join(work, 'base.tar');
run([POC, 'save', '-o', baseArchive, image]);

const results = { pocCold: [], pocRebuild: [], buildahCold: [], buildahRebuild: [] };
function pocRep(i) {
  // poc, in a fresh store with the base loaded.
  const root = join(work, `poc-${i}`);
  const env = { ...process.env, POC_ROOT: root };
  run([POC, 'load', '-q', '-i', baseArchive], { env });
  results.pocCold.push(timed([POC, 'build', '-q', '-t', 'bench', ctx], { env }));
  results.pocRebuild.push(timed([POC, 'build', '-q', '-t', 'bench', ctx], { env }));
  const out = run([POC, 'run', '--rm', 'bench'], { env });
  if (!/^40000\n[0-9a-f]{64}\n$/.test(out)) throw new Error(`poc's image gives ${JSON.stringify(out)}`);
  rmSync(root, { recursive: true, force: true });
}

function buildahRep() {
  // buildah, in a store of its own with the same base.
  const b = ['buildah', '--root', join(work, 'buildah', 'root'), '--runroot', join(work, 'buildah', 'run')];
  run([...b, 'pull', '-q', `docker-archive:${baseArchive}`]);
  run([...b, 'tag', run([...b, 'images', '-q']).trim().split('\n')[0], image]);
  const bud = [...b, 'bud', '-q', '--layers', '--runtime', 'runc', '--network', 'none', '--ulimit', 'nofile=1024:1024', '-t', 'bench', ctx];
  results.buildahCold.push(timed(bud));
  results.buildahRebuild.push(timed(bud));
  run([...b, 'rmi', '-a', '-f']);
  spawnSync(b[0], [...b.slice(1), 'system', 'reset', '-f'], { stdio: 'ignore' });
  unmountUnder(join(work, 'buildah'));
  rmSync(join(work, 'buildah'), { recursive: true, force: true });
}

for (let i = 0; i < reps; i++) {
  // Taking turns, and each going first every other time, so that the machine's drift falls on both alike.
  if (i % 2 === 0) {
    pocRep(i);
    buildahRep();
  } else {
    buildahRep();
    pocRep(i);
  }
  process.stderr.write(`rep ${i + 1}/${reps}: poc ${results.pocCold.at(-1).toFixed(2)} s cold, ${results.pocRebuild.at(-1).toFixed(2)} s rebuild; buildah ${results.buildahCold.at(-1).toFixed(2)} s, ${results.buildahRebuild.at(-1).toFixed(2)} s\n`);
}

const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
const row = (a, b, c, d) => `${a.padEnd(22)}${b.padStart(12)}${c.padStart(14)}${d.padStart(10)}`;
console.log(`poc build vs buildah bud: 10 steps, two stages, 1000-file COPY, base ${image}; medians of ${reps}`);
console.log(row('', 'poc (s)', 'buildah (s)', 'ratio'));
console.log(row('cold', m.pocCold.toFixed(2), m.buildahCold.toFixed(2), (m.pocCold / m.buildahCold).toFixed(2)));
console.log(row('unchanged rebuild', m.pocRebuild.toFixed(2), m.buildahRebuild.toFixed(2), (m.pocRebuild / m.buildahRebuild).toFixed(2)));
console.log(`poc rebuild / poc cold: ${(m.pocRebuild / m.pocCold).toFixed(2)} (target ≤ 0.2); poc cold / buildah cold: ${(m.pocCold / m.buildahCold).toFixed(2)} (target ≤ 1.0)`);
