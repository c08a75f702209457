import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Spec } from './generated/config.js';
import { validate_config, type ValidationError } from './generated/validators.js';
import { PocrunError, wrapError } from '../errors.js';

/** Bigger than any real config; a limit keeps a runaway document from eating the runtime's memory. */
export const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

/** Reads and validates <bundle>/config.json; errors name the JSON pointer and the rule. */
export function loadConfig(bundle: string): Spec {
  const file = join(bundle, 'config.json');
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw wrapError(`bundle ${bundle}: cannot read config.json`, err);
  }
  return parseConfig(bytes);
}

export function parseConfig(bytes: Buffer): Spec {
  if (bytes.length > MAX_CONFIG_BYTES) {
    throw new PocrunError(`config.json is too large: ${bytes.length} bytes, the limit is ${MAX_CONFIG_BYTES}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new PocrunError('config.json is not valid UTF-8');
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    const reason = err instanceof RangeError ? 'nested too deeply' : (err as Error).message;
    throw new PocrunError(`config.json is not valid JSON: ${reason}`);
  }
  return validateConfig(doc);
}

/** A JSON document the user gave besides config.json (`where` names it: process.json, update's resources). */
export function parseUserJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PocrunError(`${where}: not valid JSON: ${(err as Error).message}`);
  }
}

export function validateConfig(doc: unknown): Spec {
  if (validate_config(doc)) return doc as Spec;
  throw new PocrunError(`config.json ${describeValidationError(validate_config.errors ?? [])}`);
}

/** The most specific of ajv's errors, in words: "/process/args: must be a non-empty array". */
export function describeValidationError(errors: readonly ValidationError[]): string {
  const deepest = [...errors].sort((a, b) => depth(b) - depth(a) || rank(a) - rank(b))[0];
  if (!deepest) return '/: invalid';
  const pointer = deepest.instancePath || '/';
  const p = deepest.params;
  switch (deepest.keyword) {
    case 'required':
      return `${joinPointer(pointer, String(p.missingProperty))}: required`;
    case 'type':
      return `${pointer}: must be ${article(String(p.type))}`;
    case 'minItems':
      return p.limit === 1 ? `${pointer}: must be a non-empty array` : `${pointer}: must have at least ${p.limit} items`;
    case 'enum':
      return `${pointer}: must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `${pointer}: must match ${p.pattern}`;
    case 'additionalProperties':
      return `${joinPointer(pointer, String(p.additionalProperty))}: unknown property`;
    case 'minimum':
    case 'maximum':
      return `${pointer}: must be ${deepest.keyword === 'minimum' ? '>=' : '<='} ${p.limit}`;
    default:
      return `${pointer}: ${deepest.message ?? deepest.keyword}`;
  }
}

function depth(e: ValidationError): number {
  return e.instancePath.split('/').length + (e.keyword === 'required' ? 1 : 0);
}

/** Among errors at one depth, a leaf rule says more than "must match a schema in oneOf". */
function rank(e: ValidationError): number {
  return e.keyword === 'oneOf' || e.keyword === 'anyOf' || e.keyword === 'not' ? 1 : 0;
}

function joinPointer(pointer: string, key: string): string {
  return `${pointer === '/' ? '' : pointer}/${key}`;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
