/** `poc init [--busybox] [--force]`: the default Debian image (or the busybox one), reused unless --force. */
import { isatty } from 'node:tty';
import { stderr, stdout } from '../../common/output.js';
import { buildBusyboxImage, initDebianImage, type DebianProgress } from '../images/index.js';
import { shortId, type RootOptions } from '../poc-root.js';
import { humanSize } from './format.js';

export interface InitOptions extends RootOptions {
  busybox: boolean;
  force: boolean;
}

function progressLine(p: DebianProgress): string {
  const count = p.total ? `${p.done}/${p.total}` : `${p.done}`;
  return `${p.phase.padEnd(9)} ${count.padStart(7)} ${p.package ?? p.message}`.slice(0, 100);
}

export async function initCommand(o: InitOptions): Promise<number> {
  const started = Date.now();
  const root = o.root !== undefined ? { root: o.root } : {};
  if (o.busybox) {
    const img = await buildBusyboxImage({ ...root, force: o.force });
    stdout(`image ${img.name} ${shortId(img.id)} (${humanSize(img.size)})\n`);
    return 0;
  }
  // Progress on stderr, one line rewritten in place on a terminal, one line per phase otherwise.
  const tty = isatty(2);
  let lastPhase = '';
  const img = await initDebianImage({
    ...root,
    force: o.force,
    onProgress: (p) => {
      if (tty) stderr(`\r\x1b[K${progressLine(p)}`);
      else if (p.phase !== lastPhase) stderr(`${progressLine(p)}\n`);
      lastPhase = p.phase;
    },
  });
  if (tty) stderr('\r\x1b[K');
  stdout(`image ${img.name} ${shortId(img.id)} (${humanSize(img.size)}) in ${Math.round((Date.now() - started) / 1000)} s\n`);
  return 0;
}
