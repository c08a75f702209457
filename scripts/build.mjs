// npm run build: generated types and validators, the C programs (the init helper, poc's monitor, and dist/pocrun,
// the native front), and one Bun-compiled binary, dist/pocrun-ts, that serves both programs: the front hands it
// the pocrun commands it does not answer itself, and dist/poc is a link to it.
import { execFileSync } from 'node:child_process';
import { symlinkSync, rmSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: top, stdio: 'inherit' });

mkdirSync(join(top, 'dist'), { recursive: true });
run('node', ['scripts/gen-spec.mjs']);
// The planners' steps against their one definition (src/vocabulary/steps.ts): a step with a wrong name or field
// count fails the build here, not a container as root. Only src/plan and src/vocabulary (~3 s); `npm run typecheck`
// checks everything.
run('node', ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.plan.json']);
run('make', ['-s', '-C', 'src/native']);
// --minify --bytecode: the plain build spends 9-18 ms parsing its bundle before the first line runs (README, Architecture).
// ESM with --splitting: each command's code (and poc bench's charting library) is a chunk loaded when used.
// No .env or bunfig.toml autoloading: engines run the runtime in the bundle directory, and a file there must
// never change how pocrun behaves (POCRUN_INIT, for one, names the helper it executes).
run(join(top, 'node_modules/.bin/bun'), [
  'build', '--compile', '--minify', '--bytecode', '--format=esm', '--splitting', '--target=bun-linux-x64',
  '--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig',
  'src/cli/main.ts', '--outfile', 'dist/pocrun-ts',
]);
rmSync(join(top, 'dist/poc'), { force: true });
symlinkSync('pocrun-ts', join(top, 'dist/poc'));
console.log('built dist/pocrun, dist/pocrun-ts, dist/poc, dist/pocrun-init, dist/poc-monitor, dist/pocrun-systemd');
