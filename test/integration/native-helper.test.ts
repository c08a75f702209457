// The C helper driven directly, playing the runtime (test/native/run-tests.py): each of its cases is one
// assertion here, so that the helper's own tests run in CI with the rest.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { top } from '../helpers/runtime.js';

t.test('pocrun-init, case by case', async (t) => {
  const r = spawnSync('python3', [join(top, 'test/native/run-tests.py')], { encoding: 'utf8', timeout: 120_000 });
  const cases = r.stdout.split('\n').filter((line) => /^(ok|FAIL) /.test(line));
  t.ok(cases.length > 10, `the cases ran: ${r.stderr}`);
  for (const line of cases) t.ok(line.startsWith('ok '), line.replace(/\s+/g, ' '));
  t.equal(r.status, 0, r.stdout.split('\n').slice(-2).join(' '));
});
