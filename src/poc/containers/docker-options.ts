/**
 * docker run's flags that map onto config.json beyond the basics: --device, --ulimit, --sysctl, --tmpfs,
 * --shm-size, --group-add, --label, --stop-signal, --stop-timeout (pure; each bad value is one error naming the
 * flag and the value). The host facts some of them need (a device's node, the host's limits) are read by the
 * caller and passed in.
 */
import { PocError } from '../errors.js';
import { RLIMITS } from '../../vocabulary/rlimits.js';
import { checkSysctl } from '../../vocabulary/sysctls.js';
import { parseSignal } from '../../vocabulary/signals.js';
import type { NetworkMode } from '../network/etc-files.js';

/** `--device HOST[:CONTAINER][:PERMISSIONS]`: the host's node, where it appears, and the cgroup access (rwm). */
export interface DeviceRequest {
  host: string;
  container: string;
  access: string;
}

const ACCESS = /^(?!.*(.).*\1)[rwm]{1,3}$/;

export function parseDevice(spec: string): DeviceRequest {
  const parts = spec.split(':');
  const bad = (why: string) => new PocError(`invalid --device ${JSON.stringify(spec)}: ${why} (use HOST[:CONTAINER][:rwm])`);
  if (parts.length > 3 || parts.some((p) => p === '')) throw bad('empty or too many fields');
  let [host, container, access] = parts as [string, string?, string?];
  // As docker: a second field that is only permissions is the permissions (`/dev/sda:r`).
  if (parts.length === 2 && ACCESS.test(container!)) [container, access] = [undefined, container];
  container ??= host;
  access ??= 'rwm';
  if (!host.startsWith('/')) throw bad(`the host path ${JSON.stringify(host)} is not absolute`);
  if (!container.startsWith('/') || container.split('/').includes('..')) throw bad(`the container path ${JSON.stringify(container)} is not absolute`);
  if (!ACCESS.test(access)) throw bad(`${JSON.stringify(access)} is not a set of r, w and m`);
  return { host, container, access };
}

/** `--ulimit nofile=1024[:2048]`: an RLIMIT with soft and hard; -1 is unlimited (2^64-1 in config.json). */
export interface Ulimit {
  type: string;
  soft: number;
  hard: number;
}

/** RLIM_INFINITY as config.json writes it; a double, read back by pocrun as unlimited. */
export const UNLIMITED = 2 ** 64 - 1;

export function parseUlimit(spec: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(spec);
  const names = Object.keys(RLIMITS).map((k) => k.slice('RLIMIT_'.length).toLowerCase());
  if (!m) throw new PocError(`invalid --ulimit ${JSON.stringify(spec)}: use NAME=SOFT[:HARD], such as nofile=1024:2048`);
  const type = `RLIMIT_${m[1]!.toUpperCase()}`;
  if (RLIMITS[type] === undefined) throw new PocError(`invalid --ulimit ${JSON.stringify(spec)}: unknown limit ${JSON.stringify(m[1])} (one of ${names.join(', ')})`);
  const value = (text: string) => {
    const n = Number(text);
    if (n === -1) return UNLIMITED;
    if (n < 0 || !Number.isSafeInteger(n)) throw new PocError(`invalid --ulimit ${JSON.stringify(spec)}: ${text} is neither a non-negative integer nor -1 (unlimited)`);
    return n;
  };
  const soft = value(m[2]!);
  const hard = m[3] === undefined ? soft : value(m[3]);
  if (soft > hard) throw new PocError(`invalid --ulimit ${JSON.stringify(spec)}: the soft limit is above the hard limit`);
  return { type, soft, hard };
}

/** Limits as `--ulimit` writes them (nofile=1024:2048), for messages and inspect. */
export function formatUlimit(u: Ulimit): string {
  const v = (n: number) => (n === UNLIMITED ? '-1' : String(n));
  return `${u.type.slice('RLIMIT_'.length).toLowerCase()}=${v(u.soft)}:${v(u.hard)}`;
}

/**
 * A hard limit above the one poc runs under can be set only with CAP_SYS_RESOURCE (setrlimit's EPERM
 * otherwise): said before anything is made, naming the flag.
 */
export function checkUlimits(ulimits: readonly Ulimit[], host: { hard: (type: string) => number; sysResource: boolean }): void {
  if (host.sysResource) return;
  for (const u of ulimits) {
    const max = host.hard(u.type);
    if (u.hard > max) {
      throw new PocError(
        `--ulimit ${formatUlimit(u)}: the hard limit is above this host's (${max === UNLIMITED ? 'unlimited' : max}), and raising it needs CAP_SYS_RESOURCE, which poc does not have here`,
      );
    }
  }
}

/** `--sysctl KEY=VALUE`: only a sysctl of a namespace the container has its own of (pocrun's rule, as runc's). */
export function parseSysctl(spec: string, network: NetworkMode): [string, string] {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new PocError(`invalid --sysctl ${JSON.stringify(spec)}: use KEY=VALUE, such as net.ipv4.ip_forward=1`);
  const key = spec.slice(0, eq);
  checkSysctl(key, {
    has: (ns) => !(ns === 'net' && network === 'host'),
    joinPath: () => undefined,
    isHostNamespace: () => false,
    hostnameSet: true,
    where: `invalid --sysctl ${spec}`,
  });
  return [key, spec.slice(eq + 1)];
}

export interface TmpfsMount {
  destination: string;
  options: string[];
}

const TMPFS_FLAGS = new Set([
  'ro', 'rw', 'exec', 'noexec', 'suid', 'nosuid', 'dev', 'nodev', 'sync', 'async', 'dirsync', 'atime', 'noatime',
  'relatime', 'norelatime', 'strictatime', 'nostrictatime', 'diratime', 'nodiratime',
]);
const TMPFS_DATA: Record<string, RegExp> = {
  size: /^\d+[kmgKMG%]?$/, nr_blocks: /^\d+[kmgKMG%]?$/, nr_inodes: /^\d+[kmgKMG%]?$/, mode: /^[0-7]{3,4}$/, uid: /^\d+$/, gid: /^\d+$/,
};
/** A flag and the one it cancels. */
const OPPOSITE: Record<string, string> = { exec: 'noexec', noexec: 'exec', suid: 'nosuid', nosuid: 'suid', dev: 'nodev', nodev: 'dev', ro: 'rw', rw: 'ro' };

/** `--tmpfs /run[:size=64m,mode=1777,exec]`: docker's defaults (noexec, nosuid, nodev), the user's options over them. */
export function parseTmpfs(spec: string): TmpfsMount {
  const colon = spec.indexOf(':');
  const destination = colon < 0 ? spec : spec.slice(0, colon);
  const given = colon < 0 ? [] : spec.slice(colon + 1).split(',');
  if (!destination.startsWith('/') || destination.split('/').includes('..')) {
    throw new PocError(`invalid --tmpfs ${JSON.stringify(spec)}: the container path ${JSON.stringify(destination)} is not absolute`);
  }
  let options = ['noexec', 'nosuid', 'nodev'];
  for (const o of given) {
    const [key, value] = o.includes('=') ? [o.slice(0, o.indexOf('=')), o.slice(o.indexOf('=') + 1)] : [o, undefined];
    if (value === undefined ? !TMPFS_FLAGS.has(key) : !TMPFS_DATA[key]?.test(value)) {
      throw new PocError(`invalid --tmpfs ${JSON.stringify(spec)}: option ${JSON.stringify(o)} (flags such as exec, ro; or size=64m, mode=1777, uid=N, gid=N, nr_inodes=N)`);
    }
    options = options.filter((x) => x !== key && x !== OPPOSITE[key] && !x.startsWith(`${key}=`));
    options.push(o);
  }
  return { destination: `/${destination.split('/').filter((c) => c !== '' && c !== '.').join('/')}`, options };
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `--shm-size 256m` → bytes (docker's units; more than 0). */
export function parseShmSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([bkmg]?)b?$/i.exec(text.trim());
  const bytes = m ? Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!) : 0;
  if (!m || bytes <= 0) throw new PocError(`invalid --shm-size ${JSON.stringify(text)}: use a size above 0 with an optional unit b, k, m or g (256m)`);
  return bytes;
}

/** `--label KEY[=VALUE]`. */
export function parseLabels(specs: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const key = eq < 0 ? spec : spec.slice(0, eq);
    if (key === '' || /\s/.test(key)) throw new PocError(`invalid --label ${JSON.stringify(spec)}: use KEY=VALUE`);
    labels[key] = eq < 0 ? '' : spec.slice(eq + 1);
  }
  return labels;
}

/** `--group-add GROUP`: a name (looked up in the image's /etc/group by the caller) or a gid. */
export function parseGroupAdd(spec: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(spec)) throw new PocError(`invalid --group-add ${JSON.stringify(spec)}: use a group name or a numeric gid`);
  if (/^\d+$/.test(spec) && Number(spec) > 0xfffffffe) throw new PocError(`invalid --group-add ${spec}: gid out of range`);
  return spec;
}

/** `--stop-signal`: checked now, kept as given (a name such as SIGQUIT, or a number). */
export function parseStopSignal(text: string): string {
  try {
    parseSignal(text);
  } catch (err) {
    throw new PocError(`invalid --stop-signal ${JSON.stringify(text)}: ${(err as Error).message.replace(/^invalid signal "[^"]*": ?/, '') || 'not a signal'}`);
  }
  return /^\d+$/.test(text) ? text : `SIG${text.toUpperCase().replace(/^SIG/, '')}`;
}

/** `--stop-timeout SECS`: seconds from the stop signal to SIGKILL; -1 waits for ever, as docker. */
export function parseStopTimeout(text: string): number {
  if (!/^(-1|\d+)$/.test(text.trim())) throw new PocError(`invalid --stop-timeout ${JSON.stringify(text)}: use whole seconds, or -1 to wait for ever`);
  return Number(text);
}
