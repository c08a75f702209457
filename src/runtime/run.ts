import { createContainer, type CreateOptions } from './create-container.js';
import { deleteContainer } from './delete.js';
import { startContainer } from './start.js';
import type { RuntimeContext } from './context.js';
import { trace } from './trace.js';
import { forwardSignals } from '../vocabulary/signals.js';
import type { HelperSession } from './init-helper.js';

/**
 * pocrun run: create, start and, unless detached, wait for the container, forwarding signals, then delete it
 * (unless --keep).
 * Returns the exit status to exit with (the container's, 128+n when a signal ended it).
 */
export async function runContainer(ctx: RuntimeContext, opts: Omit<CreateOptions, 'mode'> & { detach: boolean; keep?: boolean }): Promise<number> {
  if (opts.detach) {
    await createContainer(ctx, { ...opts, mode: 'detach' });
    startContainer(ctx, opts.id);
    return 0;
  }
  // The helper is the init's parent and passes each signal on: one path for every signal.
  let helper: HelperSession | undefined;
  const stopForwarding = forwardSignals(() => helper);
  try {
    ({ helper } = await createContainer(ctx, { ...opts, mode: 'wait' }));
    try {
      startContainer(ctx, opts.id);
    } catch (err) {
      deleteContainer(ctx, { id: opts.id, force: true });
      throw err;
    }
    trace('started');
    const code = await helper.exited;
    trace('exited');
    // --keep: left stopped, for `state` and a later `delete`, as runc leaves it.
    if (!opts.keep) {
      deleteContainer(ctx, { id: opts.id, force: true });
      trace('deleted');
    }
    return code ?? 1;
  } finally {
    stopForwarding();
  }
}
