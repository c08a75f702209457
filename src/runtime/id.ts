import { PocrunError } from '../errors.js';
import { ID_PATTERN, ID_PUNCTUATION, MAX_ID_LENGTH } from '../vocabulary/container-id.js';

export { MAX_ID_LENGTH };

/** Checked before any path is built from an id, so that an id can never name a path outside --root. */
export function checkId(id: unknown): string {
  if (typeof id !== 'string' || id === '') throw new PocrunError('container id cannot be empty');
  if (id.length > MAX_ID_LENGTH) throw new PocrunError(`container id is too long (${id.length} characters, at most ${MAX_ID_LENGTH})`);
  if (!ID_PATTERN.test(id) || id === '.' || id === '..') {
    throw new PocrunError(`invalid container id ${JSON.stringify(id)}: use letters, digits and ${ID_PUNCTUATION} (not first)`);
  }
  return id;
}
