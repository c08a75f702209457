import type { Hook } from '../spec/generated/config.js';
import { UserError, PocrunError } from '../errors.js';

export type RuntimeHookPhase = 'prestart' | 'createRuntime' | 'poststart' | 'poststop';

/**
 * Runs hooks in the runtime's namespace with the container state on stdin (config.md "POSIX-platform Hooks").
 * The first failure throws, unless `warn` is given: then each failure is passed to it and the remaining hooks
 * still run. runtime.md (1.3.0, lifecycle): a failing prestart, createRuntime or poststart hook is an error and
 * stops the container; a failing poststop hook is a warning, "but the remaining hooks and lifecycle continue as
 * if the hook had succeeded".
 */
export function runHooks(phase: RuntimeHookPhase, hooks: readonly Hook[] | undefined, state: object, warn?: (err: PocrunError) => void): void {
  if (!hooks?.length) return;
  // Loaded when a hook runs: node:child_process costs every pocrun process ~0.2 MB, and most configs have none.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const input = JSON.stringify(state);
  hooks.forEach((hook, i) => {
    try {
      runHook(phase, hook, i, input, spawnSync);
    } catch (err) {
      if (!warn || !(err instanceof UserError)) throw err;
      warn(err);
    }
  });
}

function runHook(phase: RuntimeHookPhase, hook: Hook, i: number, input: string, spawnSync: typeof import('node:child_process').spawnSync): void {
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
    if (code === 'ETIMEDOUT') throw new PocrunError(`${where}: timed out after ${hook.timeout}s`);
    throw new PocrunError(`${where}: ${result.error.message}`);
  }
  if (result.signal) throw new PocrunError(`${where}: killed by ${result.signal}`);
  if (result.status !== 0) {
    const stderr = result.stderr?.toString().trim();
    throw new PocrunError(`${where}: exit status ${result.status}${stderr ? `: ${stderr}` : ''}`);
  }
}

function splitEnv(kv: string): [string, string] {
  const eq = kv.indexOf('=');
  return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
}
