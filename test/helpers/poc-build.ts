/**
 * poc build as the build tests run it: dist/poc in a POC_ROOT of the test's own (pocIn), with a build's longer
 * timeout, and what a build or a failed one may leave behind.
 */
import type { SpawnSyncOptions } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { pocIn, type PocResult } from './poc.js';

export function buildPocIn(root: string) {
  const { env, poc: pocOnce } = pocIn(root);
  /** A build can take longer than pocIn's minute on a loaded machine. */
  const poc = (args: string[], opts: SpawnSyncOptions = {}): PocResult => pocOnce(args, { timeout: 120_000, ...opts });
  const ok = (t: Test, args: string[]): string => {
    const r = poc(args);
    t.equal(r.status, 0, `poc ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** Mounts under the root, scratch directories, pocrun containers, cache mounts still held or half made. */
  const residue = (): string[] => {
    const out: string[] = [];
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) if (line.includes(root)) out.push(`mount ${line.split(' ')[4]}`);
    for (const d of ['layers', 'images']) {
      const dir = join(root, d);
      if (existsSync(dir)) for (const n of readdirSync(dir)) if (n.startsWith('.')) out.push(`${d}/${n}`);
    }
    const runtime = join(root, 'runtime');
    if (existsSync(runtime)) for (const n of readdirSync(runtime)) if (n.startsWith('poc-build-')) out.push(`runtime/${n}`);
    const caches = join(root, 'build-cache-mounts');
    if (existsSync(caches)) for (const n of readdirSync(caches)) if (/\.(lock|tmp-.*)$/.test(n) || (n.endsWith('.users') && readdirSync(join(caches, n)).length)) out.push(`build-cache-mounts/${n}`);
    return out;
  };
  return { env, poc, ok, residue };
}
