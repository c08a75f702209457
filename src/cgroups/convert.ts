/**
 * Pure conversions from config.json values to what cgroup files take. Where cgroup v2 differs from v1, the
 * formulas are runc's (libcontainer/cgroups/utils.go), so that a config means the same under both runtimes.
 */
import { PocrunError } from '../errors.js';
import type { LinuxDeviceCgroup } from './resources.js';

/** An integer as decimal text, never in exponent form (int64 values above 2^53 come from JSON as floats). */
export function intText(n: number, field: string): string {
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new PocrunError(`${field}: ${String(n)} is not an integer`);
  return Number.isSafeInteger(n) ? String(n) : BigInt(n).toString();
}

/** cgroup v2 number: undefined and 0 mean "not set", negative means `max` (runc's numToStr). */
export function v2Limit(n: number | undefined, field: string): string | undefined {
  if (n === undefined || n === 0) return undefined;
  return n < 0 ? 'max' : intText(n, field);
}

/**
 * cpu.shares (2..262144) to cpu.weight (1..10000), as runc 1.3+ (opencontainers/cgroups
 * ConvertCPUSharesToCgroupV2Value) and crun 1.23+ convert: a quadratic in log2(shares) through the three points
 * that matter, 2 → 1, 1024 → 100 (each hierarchy's default) and 262144 → 10000. Older runc (1.1, 1.2) and crun
 * (such as Debian 12's runc 1.1.5 and crun 1.8.1) used the line `1 + ((shares - 2) * 9999) / 262142`, which
 * turned the default 1024 into 39: a container with default shares got 39% of its siblings' weight. Kubernetes
 * accepts either (kubernetes#131216). 0 is "not set".
 */
export function cpuSharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  return Math.ceil(10 ** ((l * l + 125 * l) / 612 - 7 / 34));
}

/** blkio.weight (10..1000) to io.weight (1..10000): `1 + ((weight - 10) * 9999) / 990`, integer division. */
export function blkioWeightToIOWeight(weight: number): number {
  if (weight === 0) return 0;
  const w = Math.min(Math.max(weight, 10), 1000);
  return 1 + Math.floor(((w - 10) * 9999) / 990);
}

/**
 * OCI `memory.swap` is memory+swap (the v1 memsw limit); v2's memory.swap.max is swap alone, so it is
 * `swap - limit`. Returns undefined for "leave as is" and -1 for `max`.
 */
export function memorySwapToV2(swap: number | undefined, limit: number | undefined): number | undefined {
  const s = swap ?? 0;
  const m = limit ?? 0;
  // As in cgroup v1: memory unlimited and swap unset means both unlimited.
  if (m === -1 && s === 0) return -1;
  if (s === 0) return undefined;
  if (s < 0) return -1;
  if (m === 0 || m < 0) throw new PocrunError('memory.swap: a swap limit needs a memory limit');
  if (s < m) throw new PocrunError(`memory.swap: ${s} is below memory.limit ${m} (swap is memory+swap)`);
  return s - m;
}

/**
 * cpu.max: "quota period", `max` for no quota (a negative quota). Undefined when neither is set. A period alone
 * keeps `currentQuota` (runc would reset the quota to `max`); a quota alone is written alone, which keeps the period.
 */
export function cpuMax(quota: number | undefined, period: number | undefined, currentQuota = 'max'): string | undefined {
  const q = quota ?? 0;
  const p = period ?? 0;
  if (q === 0 && p === 0) return undefined;
  let text = q > 0 ? intText(q, 'cpu.quota') : q < 0 ? 'max' : currentQuota;
  if (p !== 0) text += ' ' + intText(p, 'cpu.period');
  return text;
}

const DEVICE_TYPES = new Set(['a', 'c', 'b']);

/** A v1 devices.allow/deny line: `c 1:3 rwm`, with `*` for unset numbers. */
export function deviceRule(rule: LinuxDeviceCgroup, field = 'devices'): string {
  const type = rule.type ?? 'a';
  if (!DEVICE_TYPES.has(type)) throw new PocrunError(`${field}: type ${JSON.stringify(type)} is not a, c or b`);
  const access = rule.access ?? 'rwm';
  if (!/^[rwm]{1,3}$/.test(access)) throw new PocrunError(`${field}: access ${JSON.stringify(access)} is not made of r, w and m`);
  const num = (n: number | undefined, name: string) =>
    n === undefined || n === -1 ? '*' : intText(n, `${field}.${name}`);
  return `${type} ${num(rule.major, 'major')}:${num(rule.minor, 'minor')} ${access}`;
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** Checks an OCI `pageSize` ("2MB", "64KB", "1GB"): the same text names the cgroup files on v1 and v2. */
export function checkPageSize(pageSize: string): string {
  if (!/^[1-9][0-9]*(B|KB|MB|GB|TB|PB)$/.test(pageSize)) {
    throw new PocrunError(`hugepageLimits: pageSize ${JSON.stringify(pageSize)} is not <size><KB|MB|GB...>`);
  }
  return pageSize;
}

/** /sys/kernel/mm/hugepages/hugepages-2048kB → "2MB", as runc names hugetlb stats. */
export function hugePageSizeName(dirName: string): string | undefined {
  const m = /^hugepages-([0-9]+)kB$/.exec(dirName);
  if (!m) return undefined;
  let size = Number(m[1]) * 1024;
  let unit = 0;
  while (size >= 1024 && size % 1024 === 0 && unit < UNITS.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${size}${UNITS[unit]}`;
}

/** "0-3,7" → [0, 1, 2, 3, 7]. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const part of text.trim().split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-');
    const from = Number(a);
    const to = b === undefined ? from : Number(b);
    if (!Number.isInteger(from) || !Number.isInteger(to)) continue;
    for (let i = from; i <= to; i++) out.push(i);
  }
  return out;
}
