import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';

/**
 * The layers of README's Architecture, as .dependency-cruiser.cjs encodes them: checked on src/, and, so that the
 * check is known to bite, on a small tree that crosses each of them.
 */
const top = join(import.meta.dirname, '../..');
const config = join(top, '.dependency-cruiser.cjs');
const depcruise = join(top, 'node_modules/.bin/depcruise');

interface Cruise {
  summary: { totalCruised: number; violations: { rule: { name: string }; from: string; to: string }[] };
}

async function cruise(cwd: string): Promise<Cruise> {
  // depcruise exits non-zero when it finds violations: the JSON says which.
  const r = await execa(depcruise, ['src', '--config', config, '--output-type', 'json'], { cwd, reject: false });
  if (!r.stdout.startsWith('{')) throw new Error(`depcruise failed (${r.exitCode}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Cruise;
}

t.test('src/ keeps its layers', async (t) => {
  const { summary } = await cruise(top);
  t.ok(summary.totalCruised > 150, `the whole of src/ was read (${summary.totalCruised} modules)`);
  t.same(summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`), []);
});

t.test('each crossing is caught', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pocrun-layers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files: Record<string, string> = {
    'tsconfig.json': '{"compilerOptions":{"module":"NodeNext","moduleResolution":"NodeNext","allowImportingTsExtensions":true,"noEmit":true}}',
    'src/errors.ts': "import '../src/runtime/context.ts';\nexport {};\n",
    'src/common/proc.ts': 'export {};\n',
    'src/plan/compile.ts': "import 'node:fs';\nimport '../cgroups/v1.ts';\nexport {};\n",
    'src/cgroups/v1.ts': "import '../runtime/context.ts';\nexport {};\n",
    'src/runtime/context.ts': "import '../cli/main.ts';\nimport '../common/output.ts';\nexport {};\n",
    'src/runtime/fine.ts': "import '../common/proc.ts';\nimport '../plan/compile.ts';\nexport {};\n",
    'src/common/output.ts': 'export {};\n',
    'src/poc/stats.ts': "import '../cgroups/v1.ts';\nimport '../runtime/context.ts';\nimport '../plan/compile.ts';\nimport '../common/output.ts';\nexport {};\n",
    'src/cli/main.ts': "import '../runtime/context.ts';\nimport '../poc/stats.ts';\nexport {};\n",
  };
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  const found = (await cruise(dir)).summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();
  t.same(found, [
    'bottom-depends-on-nothing-above: src/errors.ts -> src/runtime/context.ts',
    'cgroups-below-runtime: src/cgroups/v1.ts -> src/runtime/context.ts',
    'plan-is-pure: src/plan/compile.ts -> fs',
    'plan-is-pure: src/plan/compile.ts -> src/cgroups/v1.ts',
    'poc-drives-pocrun-through-its-commands: src/poc/stats.ts -> src/cgroups/v1.ts',
    'poc-drives-pocrun-through-its-commands: src/poc/stats.ts -> src/plan/compile.ts',
    'poc-drives-pocrun-through-its-commands: src/poc/stats.ts -> src/runtime/context.ts',
    'runtime-below-cli: src/runtime/context.ts -> src/cli/main.ts',
    'runtime-below-cli: src/runtime/context.ts -> src/common/output.ts',
  ]);
});
