#!/usr/bin/env node
// Start-up benchmark: what the Bun-compiled pocrun pays before its first line runs, step by step, against the whole
// `--version` of crun and runc, in one run, alternating. The floor of `pocrun run` against crun's is crun's own
// time plus these differences (README, Benchmarks).
//
// usage: node bench/startup.mjs [--reps N]
//
// Probes, compiled as dist/pocrun-ts is (scripts/bun-compile.mjs) and run with the environment the front gives
// pocrun-ts (BUN_JSC_useJIT=0, MIMALLOC_SCAVENGER=0); each prints performance.now() at its first line:
//   bun: an empty program (Bun's own start-up and exit)
//   bun+fs,path: it imports node:fs and node:path, which any TypeScript program that handles files loads
//   bun+pocrun: it imports src/cli/pocrun.ts, which every pocrun command loads, and runs nothing of it
// then `dist/pocrun-ts --version` and `dist/pocrun --version` (the front, which hands --version to pocrun-ts).
// Wall times are a node spawnSync's, whose own cost (~1 ms) is in every row alike: the table gives differences.
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUN_COMPILE_FLAGS } from '../scripts/bun-compile.mjs';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const reps = Number(args[args.indexOf('--reps') + 1] || 0) || 200;
const env = { ...process.env, BUN_JSC_useJIT: '0', MIMALLOC_SCAVENGER: '0' };

// Bun.write, not node:fs: the empty program must not load node:fs to print.
const FIRST_LINE = "await Bun.write(Bun.stdout, `${t.toFixed(3)}\\n`);";
const probes = {
  bun: `const t = performance.now();\n${FIRST_LINE}\n`,
  'bun+fs,path': `import { existsSync } from 'node:fs';\nimport { join } from 'node:path';\nconst t = performance.now();\nif (process.argv[2] === 'never') existsSync(join('/', 'x'));\n${FIRST_LINE}\n`,
  'bun+pocrun': `import { runPocrun } from ${JSON.stringify(join(top, 'src/cli/pocrun.ts'))};\nconst t = performance.now();\nif (process.argv[2] === 'never') await runPocrun([]);\n${FIRST_LINE}\n`,
};

const work = mkdtempSync(join(tmpdir(), 'pocrun-bench-startup-'));
try {
  const programs = [
    { name: 'crun --version', argv: ['crun', '--version'] },
    { name: 'runc --version', argv: ['runc', '--version'] },
  ].filter((p) => spawnSync('which', [p.argv[0]]).status === 0);
  for (const [name, source] of Object.entries(probes)) {
    const file = join(work, `${name.replace(/\W/g, '_')}.ts`);
    writeFileSync(file, source);
    execFileSync(join(top, 'node_modules/.bin/bun'), [...BUN_COMPILE_FLAGS, file, '--outfile', file.replace(/\.ts$/, '')], { stdio: 'ignore' });
    programs.push({ name, argv: [file.replace(/\.ts$/, '')], firstLine: true });
  }
  programs.push({ name: 'pocrun-ts --version', argv: [join(top, 'dist/pocrun-ts'), '--version'] });
  programs.push({ name: 'pocrun --version (front)', argv: [join(top, 'dist/pocrun'), '--version'] });

  const wall = {}, first = {};
  for (let i = 0; i < reps + 3; i++) {
    for (const p of i % 2 ? [...programs].reverse() : programs) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(p.argv[0], p.argv.slice(1), { env, encoding: 'utf8' });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.status !== 0) throw new Error(`${p.argv.join(' ')}: exit ${r.status}: ${r.stderr}`);
      if (i < 3) continue; // warm-up: page cache
      (wall[p.name] ??= []).push(ms);
      if (p.firstLine) (first[p.name] ??= []).push(Number(r.stdout.trim()));
    }
  }
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
  const bun = median(wall.bun);
  const crun = wall['crun --version'] ? median(wall['crun --version']) : undefined;
  console.log(`start-up, ${reps} repetitions alternating, medians in ms (BUN_JSC_useJIT=0, MIMALLOC_SCAVENGER=0, as the front runs pocrun-ts)`);
  // Differences, not ratios: the spawn's own cost is in every wall time and cancels out of them.
  const header = ['program', 'wall', 'first line', 'wall - bun', ...(crun ? ['wall - crun'] : [])];
  const rows = programs.map((p) => {
    const w = median(wall[p.name]);
    return [p.name, w.toFixed(2), first[p.name] ? median(first[p.name]).toFixed(2) : '', (w - bun).toFixed(2), ...(crun ? [(w - crun).toFixed(2)] : [])];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) console.log(row.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  '));
} finally {
  rmSync(work, { recursive: true, force: true });
}
