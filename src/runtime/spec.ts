import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultSpec, rootlessSpec } from '../spec/default.js';
import { PocrunError, wrapError } from '../errors.js';
import { egid, euid } from './rootless.js';

/** pocrun spec: writes a starting config.json into the bundle, refusing to overwrite one. */
export function writeDefaultSpec(bundle: string, rootless = false): void {
  const file = join(resolve(bundle), 'config.json');
  if (existsSync(file)) throw new PocrunError(`File ${file} exists. Remove it first`);
  const spec = rootless ? rootlessSpec(defaultSpec(), euid(), egid()) : defaultSpec();
  try {
    writeFileSync(file, `${JSON.stringify(spec, null, '\t')}\n`);
  } catch (err) {
    throw wrapError(`write ${file}`, err);
  }
}
