import { ConfigFieldError } from '../errors.js';
import { RLIMITS } from '../vocabulary/rlimits.js';


/** 2^64-1 in config.json means unlimited; the helper takes -1 for RLIM_INFINITY. */
export function rlimitValue(value: number): string {
  return value >= Number.MAX_SAFE_INTEGER ? '-1' : String(value);
}

export function rlimitNumber(type: string, pointer: string): number {
  const n = RLIMITS[type];
  if (n === undefined) throw new ConfigFieldError(pointer, `unknown rlimit type ${JSON.stringify(type)}`);
  return n;
}
