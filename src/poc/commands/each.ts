/** Commands that take several names (rm, stop, kill, start, rmi): each is tried; errors are shown per name. */
import { stderr } from '../../common/output.js';
import { UserError } from '../errors.js';

/** Runs fn for each ref; a user error is printed and the others go on; the exit status is 1 if any failed. */
export async function forEachRef(refs: string[], fn: (ref: string) => Promise<void>): Promise<number> {
  if (refs.length === 1) {
    await fn(refs[0]!);
    return 0;
  }
  let failed = 0;
  for (const ref of refs) {
    try {
      await fn(ref);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      stderr(`poc: ${err.message}\n`);
      failed++;
    }
  }
  return failed > 0 ? 1 : 0;
}
