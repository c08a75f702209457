/**
 * `poc bench [--image I] [--reps N] [--tests cpu,fileio] [--full] [--seconds S] [--out DIR]`: the proof of
 * concept's sysbench comparison of a container against its host, as a table and, with --out, a report.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isatty } from 'node:tty';
import { stderr, stdout } from '../../common/output.js';
import { wrapError } from '../errors.js';
import { ratioChart } from '../bench/chart.js';
import { markdown, textTable } from '../bench/report.js';
import { runBench, type BenchOptions } from '../bench/run.js';

export interface BenchCommandOptions extends BenchOptions {
  out?: string;
}

export async function benchCommand(o: BenchCommandOptions): Promise<number> {
  const tty = isatty(2);
  const result = runBench({
    ...o,
    onProgress: (done, total, what) => {
      const line = `[${done}/${total}] ${what}`;
      if (tty) stderr(`\r\x1b[K${line}`);
      else stderr(`${line}\n`);
    },
  });
  if (tty) stderr('\r\x1b[K');
  stdout(textTable(result));
  if (!o.out) return 0;
  const out = resolve(o.out);
  try {
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(out, 'chart.svg'), await ratioChart(result));
    writeFileSync(join(out, 'report.md'), markdown(result, 'chart.svg'));
  } catch (err) {
    throw wrapError(`bench: write the report to ${out}`, err);
  }
  const written = ['report.md', 'results.json', 'chart.svg'];
  // A PNG as well where a converter is installed (librsvg2-bin); the SVG is the report's own.
  if (spawnSync('rsvg-convert', ['--version']).status === 0) {
    const png = spawnSync('rsvg-convert', ['-f', 'png', '-o', join(out, 'chart.png'), join(out, 'chart.svg')]);
    if (png.status === 0) written.push('chart.png');
  }
  stdout(`report: ${written.map((f) => join(out, f)).join(', ')}\n`);
  return 0;
}
