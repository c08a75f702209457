import { containerStatus, ociState } from './status.js';
import type { RuntimeContext } from './context.js';

/** pocrun state: the OCI state of one container as JSON. */
export function containerState(ctx: RuntimeContext, id: string): Record<string, unknown> {
  const record = ctx.store.read(id);
  return ociState(record, containerStatus(ctx, record));
}
