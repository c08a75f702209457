import { stderr } from '../common/output.js';
import { UserError } from '../errors.js';

/**
 * The one place that turns an error into output and an exit code: a UserError is the user's problem, shown as
 * one line; anything else is our bug, shown with its stack and an invitation to report it.
 */
export function reportError(program: string, err: unknown, opts: { debug: boolean; log?: (msg: string) => void }): number {
  if (err instanceof UserError) {
    opts.log?.(err.message);
    stderr(`${program}: ${err.message}\n`);
    if (opts.debug && err.stack) stderr(`${err.stack}\n`);
    return err.exitCode;
  }
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  opts.log?.(`internal error: ${err instanceof Error ? err.message : String(err)}`);
  stderr(`${program}: internal error, please report it with the command you ran:\n${text}\n`);
  return 2;
}
