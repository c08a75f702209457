import { ConfigFieldError } from '../errors.js';
import { capabilityNumber } from '../vocabulary/capabilities.js';

export type CapabilitySet = 'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient';
export const CAPABILITY_SETS: readonly CapabilitySet[] = ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'];

/** A set of names as a 64-bit mask in hex, the form the helper's `caps` step takes. */
export function capabilityMask(names: readonly string[] = [], pointer: string): string {
  let mask = 0n;
  for (const name of names) {
    const n = capabilityNumber(name);
    if (n === undefined) throw new ConfigFieldError(pointer, `unknown capability ${JSON.stringify(name)}`);
    mask |= 1n << BigInt(n);
  }
  return mask.toString(16);
}
