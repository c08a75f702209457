/**
 * poc init's Debian image for a test's POC_ROOT without a debootstrap per test: built once (about a minute,
 * from the host's apt mirror) in a cache root shared by the tests (POC_TEST_IMAGE_CACHE, default
 * /var/cache/poc-test/images), under a lock so that concurrent tests build it once, then linked into the test's
 * root (`cp -al`: an image's rootfs is only ever a read-only lower layer; poc tag links images the same way).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { POC } from './poc.js';

const CACHE = process.env.POC_TEST_IMAGE_CACHE ?? '/var/cache/poc-test/images';

function findDebian(root: string): string | undefined {
  const dir = join(root, 'images');
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir).find((id) => {
    try {
      return JSON.parse(readFileSync(join(dir, id, 'image.json'), 'utf8')).name === 'debian';
    } catch {
      return false;
    }
  });
}

/** Puts the Debian image (named "debian") into `root`; throws when it cannot be built (a suite that cannot run fails). */
export function linkDebianImage(root: string): void {
  mkdirSync(CACHE, { recursive: true });
  // flock(1) serialises the build: a second test waits for the first one's image instead of building its own.
  const r = spawnSync('flock', [join(CACHE, '.lock'), POC, 'init'], { env: { ...process.env, POC_ROOT: CACHE }, encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`poc init (the Debian image, in ${CACHE}): exit ${r.status}: ${r.stderr}`);
  const id = findDebian(CACHE);
  if (!id) throw new Error(`poc init left no image named debian in ${CACHE}`);
  mkdirSync(join(root, 'images'), { recursive: true });
  if (!existsSync(join(root, 'images', id))) execFileSync('cp', ['-al', join(CACHE, 'images', id), join(root, 'images', id)]);
}
