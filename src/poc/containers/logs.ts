/**
 * The container log the monitor writes, in the CRI format conmon uses: one line per line of output,
 * `<RFC 3339 time with nanoseconds> <stdout|stderr> <F|P> <text>`, where P marks a piece of a line that goes on
 * in the next entry (output written without a newline yet, or a line longer than the monitor's buffer).
 */
export type Stream = 'stdout' | 'stderr';

export interface LogLine {
  /** Time of the line's first piece. */
  time: string;
  stream: Stream;
  text: string;
  /** False for a last piece that had no newline (yet). */
  complete: boolean;
}

/**
 * Parses log text into lines, joining partial pieces per stream. `pending` holds the pieces still open at the
 * end, to be passed to the next call when following a growing file.
 */
export function parseLog(text: string, pending: Partial<Record<Stream, LogLine>> = {}): { lines: LogLine[]; pending: Partial<Record<Stream, LogLine>> } {
  const lines: LogLine[] = [];
  const open = { ...pending };
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    const a = raw.indexOf(' ');
    const b = raw.indexOf(' ', a + 1);
    const c = raw.indexOf(' ', b + 1);
    if (a < 0 || b < 0 || c < 0) continue; // a torn line from a crash: skip
    const time = raw.slice(0, a);
    const stream = raw.slice(a + 1, b);
    const tag = raw.slice(b + 1, c);
    if ((stream !== 'stdout' && stream !== 'stderr') || (tag !== 'F' && tag !== 'P')) continue;
    const piece = raw.slice(c + 1);
    const prev = open[stream];
    const line: LogLine = prev ? { ...prev, text: prev.text + piece } : { time, stream, text: piece, complete: false };
    if (tag === 'P') {
      open[stream] = line;
    } else {
      delete open[stream];
      lines.push({ ...line, complete: true });
    }
  }
  return { lines, pending: open };
}

/** The lines still open at the end of a finished log, as incomplete lines. */
export function flushPending(pending: Partial<Record<Stream, LogLine>>): LogLine[] {
  return Object.values(pending)
    .filter((l): l is LogLine => l !== undefined)
    .sort((x, y) => x.time.localeCompare(y.time));
}

export function formatLine(l: LogLine, timestamps: boolean): string {
  return `${timestamps ? `${l.time} ` : ''}${l.text}${l.complete ? '\n' : ''}`;
}

/** Splits complete text at the last `\n`: what can be parsed now and the torn rest. */
export function splitComplete(text: string): [string, string] {
  const nl = text.lastIndexOf('\n');
  return nl < 0 ? ['', text] : [text.slice(0, nl + 1), text.slice(nl + 1)];
}
