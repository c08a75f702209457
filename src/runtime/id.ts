import { PocrunError } from '../errors.js';

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;
export const MAX_ID_LENGTH = 1024;

/** Checked before any path is built from an id, so that an id can never name a path outside --root. */
export function checkId(id: unknown): string {
  if (typeof id !== 'string' || id === '') throw new PocrunError('container id cannot be empty');
  if (id.length > MAX_ID_LENGTH) throw new PocrunError(`container id is too long (${id.length} characters, at most ${MAX_ID_LENGTH})`);
  if (!ID_PATTERN.test(id) || id === '.' || id === '..') {
    throw new PocrunError(`invalid container id ${JSON.stringify(id)}: use letters, digits and _.+- (not first)`);
  }
  return id;
}
