import { spawnSync } from 'node:child_process';
import { PocrunError } from '../errors.js';
import type { RuntimeContext } from './context.js';

export interface PsOptions {
  id: string;
  format: 'table' | 'json';
  /** Arguments for ps(1) (table format); `-ef` when none. */
  psArgs: string[];
}

/**
 * pocrun ps, as runc's: `json` prints the host pids of the container's processes (its cgroup's, sorted);
 * `table` runs ps(1) on the host with the given arguments and keeps the header and the container's lines.
 */
export function psContainer(ctx: RuntimeContext, opts: PsOptions): string {
  const record = ctx.store.read(opts.id);
  const pids = ctx.cgroupsOf(record).exists(record.cgroupPath) ? ctx.cgroupsOf(record).pids(record.cgroupPath) : [];
  if (opts.format === 'json') return `${JSON.stringify(pids)}\n`;
  const args = opts.psArgs.length ? opts.psArgs : ['-ef'];
  const r = spawnSync('ps', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new PocrunError(`ps: cannot run ps: ${r.error.message}`);
  if (r.status !== 0) throw new PocrunError(`ps ${args.join(' ')}: exit status ${r.status}: ${(r.stdout + r.stderr).trim()}`);
  return filterPsOutput(r.stdout, pids);
}

/** The header line and the lines whose PID column names one of `pids` (runc's filter, pure for tests). */
export function filterPsOutput(output: string, pids: readonly number[]): string {
  const lines = output.split('\n');
  const header = lines[0] ?? '';
  const column = header.trim().split(/\s+/).indexOf('PID');
  if (column < 0) throw new PocrunError("ps: couldn't find the PID field in ps output (give ps arguments that print it)");
  const wanted = new Set(pids);
  const out = [header];
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    const field = line.trim().split(/\s+/)[column];
    const pid = Number(field);
    if (!Number.isInteger(pid)) throw new PocrunError(`ps: unable to parse pid ${JSON.stringify(field)} in ps output`);
    if (wanted.has(pid)) out.push(line);
  }
  return `${out.join('\n')}\n`;
}
