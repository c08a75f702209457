import { PocrunError } from '../errors.js';

import type { Step } from '../vocabulary/steps.js';

export type { Step };

/** Encodes a plan for pocrun-init (PROTOCOL.md): each step is u32le nfields, then u32le length + bytes each. */
export function encodePlan(steps: readonly (readonly string[])[]): Buffer {
  // Measured first and written into one buffer: a buffer per field would be ~1000 small allocations per plan.
  let size = 0;
  for (const step of steps) {
    size += 4;
    for (const field of step) size += 4 + Buffer.byteLength(field, 'utf8');
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const step of steps) {
    at = out.writeUInt32LE(step.length, at);
    for (const field of step) {
      if (field.includes('\0')) throw new PocrunError(`${step.at(-1)}: a string contains a NUL byte`);
      const length = out.write(field, at + 4, 'utf8');
      out.writeUInt32LE(length, at);
      at += 4 + length;
    }
  }
  return out;
}

export function decodePlan(buffer: Buffer): string[][] {
  const steps: string[][] = [];
  let at = 0;
  while (at < buffer.length) {
    const n = buffer.readUInt32LE(at);
    at += 4;
    const step: string[] = [];
    for (let i = 0; i < n; i++) {
      const length = buffer.readUInt32LE(at);
      at += 4;
      step.push(buffer.toString('utf8', at, at + length));
      at += length;
    }
    steps.push(step);
  }
  return steps;
}
