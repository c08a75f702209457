import { PocError } from '../errors.js';

/** Encodes a plan for pocrun-init (PROTOCOL.md): each step is u32le nfields, then u32le length + bytes each. */
export type Step = readonly string[];

export function encodePlan(steps: readonly Step[]): Buffer {
  const parts: Buffer[] = [];
  for (const step of steps) {
    const count = Buffer.alloc(4);
    count.writeUInt32LE(step.length);
    parts.push(count);
    for (const field of step) {
      const bytes = Buffer.from(field, 'utf8');
      if (bytes.includes(0)) throw new PocError(`${step.at(-1)}: a string contains a NUL byte`);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(bytes.length);
      parts.push(length, bytes);
    }
  }
  return Buffer.concat(parts);
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
