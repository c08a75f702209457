/** `poc top CONTAINER`: the processes in the container's cgroup (rootless: its pid namespace), as the host sees them. */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { stdout } from '../../cli/output.js';
import { PocError } from '../errors.js';
import { detectCgroups } from '../../cgroups/index.js';
import { containerCgroupPath } from '../containers/cgroup.js';
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

/** The processes in the pid namespace of `pid` (its own, for a container's init), as the host numbers them. */
function pidNamespaceMembers(pid: number): number[] {
  const ns = (p: number | string) => {
    try {
      return readlinkSync(`/proc/${p}/ns/pid`);
    } catch {
      return undefined; // exited, or another user's
    }
  };
  const want = ns(pid);
  if (!want) return [];
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n) && ns(n) === want).map(Number).sort((a, b) => a - b);
}

export function topCommand(o: TopOptions): number {
  const c = resolveContainer(o.ref, o);
  const status = containerStatus(c.id, o);
  if (status.status !== 'running') throw new PocError(`container ${c.name} is not running`);
  // Rootless, the container has no cgroup of its own: its processes are those of its pid namespace.
  const pids = c.options.rootless ? pidNamespaceMembers(status.pid!) : detectCgroups().pids(containerCgroupPath(c.id, c.options.cgroup));
  const rows = pids.map(processRow).filter((r): r is ProcessRow => r !== undefined);
  stdout(table(['UID', 'PID', 'PPID', 'TIME', 'CMD'], rows.map((r) => [r.uid, String(r.pid), String(r.ppid), r.time, r.cmd])));
  return 0;
}
