import { containerStatus, ociState } from './status.js';
import type { RuntimeContext } from './context.js';

export interface ListOptions {
  format: 'table' | 'json';
  quiet: boolean;
}

/** pocrun list: runc's columns, or its JSON array. */
export function listContainers(ctx: RuntimeContext, opts: ListOptions): string {
  const states = ctx.store.ids().flatMap((id) => {
    try {
      const record = ctx.store.read(id);
      return [ociState(record, containerStatus(ctx, record))];
    } catch {
      return []; // removed while listing
    }
  });
  if (opts.quiet) return states.map((s) => `${s.id}\n`).join('');
  if (opts.format === 'json') return `${JSON.stringify(states)}\n`;
  const rows = [['ID', 'PID', 'STATUS', 'BUNDLE', 'CREATED', 'OWNER'], ...states.map((s) => [s.id, s.pid, s.status, s.bundle, s.created, s.owner].map(String))];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows.map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]! + 3))).join('')).join('\n') + '\n';
}
