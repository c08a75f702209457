/** Output shapes shared by the commands: tables, durations and sizes as docker shows them (pure). */

/** Columns padded to the widest cell, separated by three spaces, as docker prints them. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

/** "5 seconds", "About a minute", "3 hours", as docker's HumanDuration. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.round(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  const d = Math.round(h / 24);
  if (d < 14) return `${d} days`;
  if (d < 60) return `${Math.round(d / 7)} weeks`;
  if (d < 730) return `${Math.round(d / 30)} months`;
  return `${Math.round(d / 365)} years`;
}

export function ago(iso: string, now = Date.now()): string {
  return `${humanDuration(now - Date.parse(iso))} ago`;
}

/** `bytes` in the largest of `units` (each `base` times the one before) in which it is at least 1; i 0: bytes. */
function scaled(bytes: number, base: number, units: readonly string[]): { v: number; unit: string; i: number } {
  let v = bytes;
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  return { v, unit: units[i]!, i };
}

/** 1000-based units, as docker shows sizes: "4.2MB", "1.1GB". */
export function humanSize(bytes: number): string {
  const { v, unit, i } = scaled(bytes, 1000, ['B', 'kB', 'MB', 'GB', 'TB']);
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0).replace(/\.0+$/, '')}${unit}`;
}

/** 1024-based units, as docker stats shows memory: "1.5MiB". */
export function binarySize(bytes: number): string {
  const { v, unit, i } = scaled(bytes, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB']);
  return `${i === 0 ? v : v.toFixed(2)}${unit}`;
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
