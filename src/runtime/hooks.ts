import type { Hook } from '../spec/generated/config.js';
import { PocError } from '../errors.js';

export type RuntimeHookPhase = 'prestart' | 'createRuntime' | 'poststart' | 'poststop';

/**
 * Runs hooks in the runtime's namespace with the container state on stdin (config.md "POSIX-platform Hooks").
 * The first failure throws; callers of poststart and poststop turn it into a warning, as the spec asks.
 */
export function runHooks(phase: RuntimeHookPhase, hooks: readonly Hook[] | undefined, state: object): void {
  if (!hooks?.length) return;
  // Loaded when a hook runs: node:child_process costs every pocrun process ~0.2 MB, and most configs have none.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const input = JSON.stringify(state);
  hooks.forEach((hook, i) => {
    const [argv0, ...args] = hook.args?.length ? hook.args : [hook.path];
    const result = spawnSync(hook.path, args, {
      argv0,
      input,
      env: Object.fromEntries((hook.env ?? []).map((kv) => splitEnv(kv))),
      stdio: ['pipe', 'inherit', 'pipe'],
      timeout: hook.timeout ? hook.timeout * 1000 : undefined,
      killSignal: 'SIGKILL',
    });
    const where = `${phase} hook ${i} (${hook.path})`;
    if (result.error) {
      const code = (result.error as NodeJS.ErrnoException).code;
      if (code === 'ETIMEDOUT') throw new PocError(`${where}: timed out after ${hook.timeout}s`);
      throw new PocError(`${where}: ${result.error.message}`);
    }
    if (result.signal) throw new PocError(`${where}: killed by ${result.signal}`);
    if (result.status !== 0) {
      const stderr = result.stderr?.toString().trim();
      throw new PocError(`${where}: exit status ${result.status}${stderr ? `: ${stderr}` : ''}`);
    }
  });
}

function splitEnv(kv: string): [string, string] {
  const eq = kv.indexOf('=');
  return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
}
