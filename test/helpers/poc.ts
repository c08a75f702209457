/**
 * The compiled poc as the integration tests run it: dist/poc, as root, in a POC_ROOT of the test's own.
 */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { join } from 'node:path';

export const POC = join(import.meta.dirname, '../../dist/poc');

export interface PocResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `poc` (its status and output), `ok` (insists on success, returns stdout) and `pocAsync` (several at once) for
 * one POC_ROOT, with the environment they run in; `prefix` runs poc through another program (nsenter into a
 * simulated host's network namespace). The caller's POC_PROGRAM is not passed on: poc finds its own programs.
 */
export function pocIn(root: string, extraEnv: NodeJS.ProcessEnv = {}, prefix: string[] = []) {
  const env: NodeJS.ProcessEnv = { ...process.env, POC_ROOT: root, ...extraEnv };
  delete env.POC_PROGRAM;
  const [bin, ...pre] = [...prefix, POC];
  const poc = (args: string[], opts: SpawnSyncOptions = {}): PocResult => {
    const r = spawnSync(bin!, [...pre, ...args], { encoding: 'utf8', timeout: 60_000, env, ...opts });
    return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
  };
  const ok = (args: string[], opts: SpawnSyncOptions = {}): string => {
    const r = poc(args, opts);
    if (r.status !== 0) throw new Error(`poc ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  };
  const pocAsync = (args: string[]): Promise<PocResult> =>
    new Promise((resolve) => {
      const child = spawn(bin!, [...pre, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('exit', (status) => resolve({ status, stdout, stderr }));
    });
  return { env, poc, ok, pocAsync };
}
