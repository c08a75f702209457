import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultSpec } from '../spec/default.js';
import { PocError, wrapError } from '../errors.js';

/** pocrun spec: writes a starting config.json into the bundle, refusing to overwrite one. */
export function writeDefaultSpec(bundle: string): void {
  const file = join(resolve(bundle), 'config.json');
  if (existsSync(file)) throw new PocError(`File ${file} exists. Remove it first`);
  try {
    writeFileSync(file, `${JSON.stringify(defaultSpec(), null, '\t')}\n`);
  } catch (err) {
    throw wrapError(`write ${file}`, err);
  }
}
