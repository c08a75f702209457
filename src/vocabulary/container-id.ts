/**
 * The container id rule: a letter or a digit, then letters, digits and ID_PUNCTUATION, at most MAX_ID_LENGTH
 * characters, so that an id can never name a path outside --root. runtime/id.ts checks it; the native front
 * (front/pocrun.c) answers only ids that pass it, with the constants scripts/gen-native.ts writes from these.
 */
export const MAX_ID_LENGTH = 1024;
export const ID_PUNCTUATION = '_.+-';

const escaped = ID_PUNCTUATION.replace(/[\\\]^-]/g, '\\$&');
export const ID_PATTERN = new RegExp(`^[A-Za-z0-9][A-Za-z0-9${escaped}]*$`);
