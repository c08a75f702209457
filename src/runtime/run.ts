import { createContainer, type CreateOptions } from './create.js';
import { deleteContainer } from './delete.js';
import { startContainer } from './start.js';
import type { RuntimeContext } from './context.js';
import { trace } from './trace.js';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;

/**
 * pocrun run: create, start and, unless detached, wait for the container, forwarding signals, then delete it.
 * Returns the exit status to exit with (the container's, 128+n when a signal ended it).
 */
export async function runContainer(ctx: RuntimeContext, opts: Omit<CreateOptions, 'mode'> & { detach: boolean }): Promise<number> {
  const { helper } = await createContainer(ctx, { ...opts, mode: opts.detach ? 'detach' : 'wait' });
  if (opts.detach) {
    startContainer(ctx, opts.id);
    return 0;
  }
  // The helper is the init's parent; it passes each signal on, so there is one path for every signal.
  const forward = (signal: NodeJS.Signals) => helper.kill(signal);
  for (const s of FORWARDED) process.on(s, forward);
  const exited = helper.exited;
  try {
    startContainer(ctx, opts.id);
  } catch (err) {
    deleteContainer(ctx, { id: opts.id, force: true });
    throw err;
  }
  trace('started');
  const code = await exited;
  trace('exited');
  for (const s of FORWARDED) process.off(s, forward);
  deleteContainer(ctx, { id: opts.id, force: true });
  trace('deleted');
  return code ?? 1;
}
