/**
 * `poc top CONTAINER`: the container's processes, as docker's: their pids from the runtime (`pocrun ps --format
 * json`: its cgroup's, or rootless its pid namespace's), described from the host's /proc.
 */
import { readFileSync } from 'node:fs';
import { stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { pocrunOk } from '../containers/runtime.js';
import { containerStatus, resolveContainer } from '../containers/container-store.js';
import type { RootOptions } from '../poc-root.js';
import { table } from './format.js';

export interface TopOptions extends RootOptions {
  ref: string;
}

const CLK_TCK = 100;

export interface ProcessRow {
  uid: string;
  pid: number;
  ppid: number;
  time: string;
  cmd: string;
}

/** TIME as ps shows it: [DD-]HH:MM:SS (pure). */
export function cpuTime(ticks: number): string {
  const total = Math.floor(ticks / CLK_TCK);
  const pad = (n: number) => String(n).padStart(2, '0');
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  return `${d > 0 ? `${d}-` : ''}${pad(h)}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
}

function processRow(pid: number): ProcessRow | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1] ?? '?';
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean).join(' ');
    return { uid, pid, ppid: Number(f[1]), time: cpuTime(Number(f[11]) + Number(f[12])), cmd: cmdline || `[${comm}]` };
  } catch {
    return undefined; // exited meanwhile
  }
}

export async function topCommand(o: TopOptions): Promise<number> {
  const c = resolveContainer(o.ref, o);
  const status = containerStatus(c.id, o);
  if (status.status !== 'running') throw new PocError(`container ${c.name} is not running`);
  const pids = JSON.parse(await pocrunOk(['ps', '--format', 'json', c.id], o)) as number[];
  const rows = pids.map(processRow).filter((r): r is ProcessRow => r !== undefined);
  stdout(table(['UID', 'PID', 'PPID', 'TIME', 'CMD'], rows.map((r) => [r.uid, String(r.pid), String(r.ppid), r.time, r.cmd])));
  return 0;
}
