// npm run build: generated types and validators, the C programs (the init helper, poc's monitor, and dist/pocrun,
// the native front), and one Bun-compiled binary, dist/pocrun-ts, that serves both programs: the front hands it
// the pocrun commands it does not answer itself, and dist/poc is a link to it.
import { execFileSync } from 'node:child_process';
import { symlinkSync, rmSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUN_COMPILE_FLAGS } from './bun-compile.mjs';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: top, stdio: 'inherit' });

mkdirSync(join(top, 'dist'), { recursive: true });
run('node', ['scripts/gen-spec.mjs']);
run('node', ['scripts/gen-criu-rpc.mjs']);
// The planners' steps against their one definition (src/vocabulary/steps.ts): a step with a wrong name or field
// count fails the build here, not a container as root. Only src/plan and src/vocabulary (~3 s); `npm run typecheck`
// checks everything.
run('node', ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'tsconfig.plan.json']);
run('make', ['-s', '-C', 'src/native']);
run(join(top, 'node_modules/.bin/bun'), [...BUN_COMPILE_FLAGS, 'src/cli/main.ts', '--outfile', 'dist/pocrun-ts']);
rmSync(join(top, 'dist/poc'), { force: true });
symlinkSync('pocrun-ts', join(top, 'dist/poc'));
console.log('built dist/pocrun, dist/pocrun-ts, dist/poc, dist/pocrun-init, dist/poc-monitor, dist/pocrun-systemd');
