/**
 * The compiled poc as the integration tests run it: dist/poc, as root, in a POC_ROOT of the test's own.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { join } from 'node:path';

export const POC = join(import.meta.dirname, '../../dist/poc');

export interface PocResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `poc` (its status and output) and `ok` (insists on success, returns stdout) for one POC_ROOT, with the
 * environment they run in. The caller's POC_PROGRAM is not passed on: poc finds its own programs.
 */
export function pocIn(root: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, POC_ROOT: root, ...extraEnv };
  delete env.POC_PROGRAM;
  const poc = (args: string[], opts: SpawnSyncOptions = {}): PocResult => {
    const r = spawnSync(POC, args, { encoding: 'utf8', timeout: 60_000, env, ...opts });
    return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  };
  const ok = (args: string[], opts: SpawnSyncOptions = {}): string => {
    const r = poc(args, opts);
    if (r.status !== 0) throw new Error(`poc ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  return { env, poc, ok };
}
