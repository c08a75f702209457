/**
 * Per-layer progress of a pull or push. On a terminal, one line per layer redrawn in place (at most 10 times a
 * second), as docker draws them; elsewhere (a pipe, a log, CI) nothing per layer: the command prints its result.
 */
import { isatty } from 'node:tty';
import { stderr } from '../../common/output.js';

export type LayerStatus = 'waiting' | 'downloading' | 'verifying' | 'extracting' | 'done' | 'exists' | 'uploading' | 'pushed' | 'mounted';

export interface Progress {
  layer(digest: string, status: LayerStatus, current?: number, total?: number): void;
  /** Draws the final state (a terminal) and stops. */
  end(): void;
}

const LABEL: Record<LayerStatus, string> = {
  waiting: 'Waiting',
  downloading: 'Downloading',
  verifying: 'Verifying Checksum',
  extracting: 'Extracting',
  done: 'Pull complete',
  exists: 'Already exists',
  uploading: 'Pushing',
  pushed: 'Pushed',
  mounted: 'Mounted from another repository',
};

export function humanBytes(n: number): string {
  if (n < 1000) return `${n}B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)}MB`;
  return `${(n / 1e9).toFixed(2)}GB`;
}

/** One layer's line: `a1b2c3d4e5f6: Downloading [=====>     ] 12.3MB/45.6MB`. */
export function progressLine(digest: string, status: LayerStatus, current?: number, total?: number, width = 30): string {
  const id = digest.replace(/^sha256:/, '').slice(0, 12);
  let line = `${id}: ${LABEL[status]}`;
  if ((status === 'downloading' || status === 'uploading' || status === 'extracting') && total && current !== undefined) {
    const filled = Math.min(width, Math.floor((current / total) * width));
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}`;
    line += ` [${bar}] ${humanBytes(current)}/${humanBytes(total)}`;
  }
  return line;
}

export const quietProgress: Progress = { layer: () => {}, end: () => {} };

export function terminalProgress(): Progress {
  const order: string[] = [];
  const lines = new Map<string, string>();
  let drawn = 0;
  let last = 0;
  let pending: ReturnType<typeof setTimeout> | undefined;
  const draw = () => {
    pending = undefined;
    last = Date.now();
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const d of order) out += `\r\x1b[2K${lines.get(d)}\n`;
    drawn = order.length;
    stderr(out);
  };
  return {
    layer(digest, status, current, total) {
      if (!lines.has(digest)) order.push(digest);
      lines.set(digest, progressLine(digest, status, current, total));
      if (pending) return;
      const wait = 100 - (Date.now() - last);
      if (wait <= 0) draw();
      else pending = setTimeout(draw, wait);
    },
    end() {
      if (pending) clearTimeout(pending);
      if (order.length > 0) draw();
    },
  };
}

/** Bars on a terminal (stderr), nothing elsewhere. */
export function progressFor(fd = 2): Progress {
  // isatty from node:tty costs little; process.stderr would build a stream (see common/output.ts).
  return isTerminal(fd) ? terminalProgress() : quietProgress;
}

function isTerminal(fd: number): boolean {
  try {
    return isatty(fd);
  } catch {
    return false;
  }
}
