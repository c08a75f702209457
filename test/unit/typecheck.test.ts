import t from 'tap';
import { join } from 'node:path';
import { execa } from 'execa';

/**
 * The whole tree type-checks (src, tests, scripts, bench, conformance: tsconfig.json). tap's loader strips types
 * without checking them, and `npm run build` checks only src/plan and src/vocabulary, so without this a type
 * error anywhere else would pass the suite. It needs the build's generated modules (the compose validator).
 */
const top = join(import.meta.dirname, '../..');

t.test('tsc --noEmit over tsconfig.json reports nothing', async (t) => {
  const r = await execa(join(top, 'node_modules/.bin/tsc'), ['--noEmit', '-p', top], { cwd: top, reject: false });
  t.equal(r.exitCode, 0, 'tsc exits 0');
  t.equal(`${r.stdout}${r.stderr}`.trim(), '', 'and prints no diagnostic');
});
