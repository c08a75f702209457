/**
 * A compose file checked against the Compose Specification's JSON schema (schema/compose/compose-spec.json,
 * compiled to a standalone ajv validator at build time by scripts/gen-spec.mjs). Of ajv's errors the one that
 * points deepest into the file is reported, as a JSON pointer, in words a user can act on.
 */
import { validate_compose } from '../../spec/generated/compose-validator.js';
import type { ValidationError } from '../../spec/generated/validators.js';

export interface SchemaProblem {
  /** JSON pointer segments of the key at fault. */
  path: string[];
  message: string;
}

/** undefined when the document is valid. */
export function checkComposeSchema(doc: unknown): SchemaProblem | undefined {
  if (validate_compose(doc)) return undefined;
  return describe(pickError(validate_compose.errors ?? []));
}

const segments = (pointer: string) => (pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')));

/** The deepest error; at one depth a precise keyword (an unknown key, a type) before oneOf/anyOf's summaries. */
function pickError(errors: ValidationError[]): ValidationError {
  const rank = (e: ValidationError) => (e.keyword === 'additionalProperties' ? 3 : e.keyword === 'oneOf' || e.keyword === 'anyOf' ? 0 : e.keyword === 'type' ? 1 : 2);
  return [...errors].sort((a, b) => segments(b.instancePath).length - segments(a.instancePath).length || rank(b) - rank(a))[0]!;
}

function describe(e: ValidationError): SchemaProblem {
  const path = segments(e.instancePath);
  const p = e.params;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const where = path.length === 0 ? 'at the top level' : `in ${path.join('.')}`;
      return { path: [...path, key], message: `unknown key ${JSON.stringify(key)} ${where} (not in the Compose Specification)` };
    }
    case 'type':
      return { path, message: `must be ${article(String(p.type).split(',').join(' or '))}` };
    case 'required':
      return { path, message: `the key ${JSON.stringify(p.missingProperty)} is required` };
    case 'enum':
      return { path, message: `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    case 'pattern':
      return { path, message: `does not match the pattern ${String(p.pattern)}` };
    case 'uniqueItems':
      return { path, message: `has duplicate items (${String(p.j)} and ${String(p.i)})` };
    default:
      return { path, message: e.message ?? e.keyword };
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
