/**
 * A container's transient scope as systemd unit properties (systemd.resource-control(5)), as runc's systemd
 * driver makes them (libcontainer/cgroups/systemd/common.go, v1.go, v2.go; devices/systemd.go). systemd keeps
 * these and re-applies them (on daemon-reload, say), so what it knows it must be told; what it has no property
 * for, the cgroupfs driver then writes to the delegated cgroup's files, as runc's does after SetUnitProperties.
 * Pure: values in, properties out; systemd-bus.ts sends them.
 */
import { PocrunError } from '../errors.js';
import { blkioWeightToIOWeight, cpuSharesToWeight, intText, memorySwapToV2, parseCpuList } from './convert.js';
import type { LinuxDeviceCgroup, LinuxResources } from './resources.js';

/** D-Bus signatures pocrun-systemd marshals; numbers travel as decimal text (uint64 does not fit a double). */
export type UnitProperty =
  | { name: string; sig: 'b'; value: boolean }
  | { name: string; sig: 's' | 't' | 'u'; value: string }
  | { name: string; sig: 'as' | 'au' | 'ay'; value: string[] }
  | { name: string; sig: 'a(ss)'; value: Array<[string, string]> };

/** systemd's USEC_INFINITY / CGROUP_LIMIT_MAX: "no limit" for every uint64 property used here. */
export const UINT64_MAX = '18446744073709551615';
/** The kernel's default CFS period, 100 ms, in µs. */
const DEFAULT_CPU_PERIOD = 100000;

const t = (name: string, value: string): UnitProperty => ({ name, sig: 't', value });

/** The properties a container's scope is started with, besides its resources. */
export function scopeProperties(opts: { id: string; slice: string; pid: number }): UnitProperty[] {
  return [
    { name: 'Description', sig: 's', value: `pocrun container ${opts.id}` },
    { name: 'Slice', sig: 's', value: opts.slice },
    // The helper, before it clones the container's init: the init is born inside the scope.
    { name: 'PIDs', sig: 'au', value: [String(opts.pid)] },
    // The container's cgroup is pocrun's to write (and the container's, below it): systemd leaves it alone.
    { name: 'Delegate', sig: 'b', value: true },
    { name: 'MemoryAccounting', sig: 'b', value: true },
    { name: 'CPUAccounting', sig: 'b', value: true },
    { name: 'IOAccounting', sig: 'b', value: true },
    { name: 'TasksAccounting', sig: 'b', value: true },
    // No ordering against shutdown.target and the like: the scope lives and dies with the container.
    { name: 'DefaultDependencies', sig: 'b', value: false },
  ];
}

/** A uint64 limit: negative is "no limit" (runc passes uint64(-1), that is UINT64_MAX). */
const limit = (n: number, field: string) => (n < 0 ? UINT64_MAX : intText(n, field));

/**
 * A CPU list ("0-3,8") as the bit mask systemd's AllowedCPUs and AllowedMemoryNodes take: bytes, CPU 0 in the
 * lowest bit of the first byte (runc's RangeToBits).
 */
export function rangeToBits(list: string, field: string): string[] {
  if (!/^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$/.test(list)) throw new PocrunError(`${field}: ${JSON.stringify(list)} is not a list such as "0-3,8"`);
  const bytes: number[] = [];
  for (const n of parseCpuList(list)) {
    const i = Math.floor(n / 8);
    while (bytes.length <= i) bytes.push(0);
    bytes[i]! |= 1 << (n % 8);
  }
  return bytes.map(String);
}

/**
 * CPUQuotaPerSecUSec (and CPUQuotaPeriodUSec when a period is given), as runc's addCpuQuota: systemd keeps the
 * quota as a whole percentage of a CPU, so a fraction is rounded up to the next 10 ms per second.
 */
function cpuQuota(quota: number | undefined, period: number | undefined): UnitProperty[] {
  const q = quota ?? 0;
  const p = period ?? 0;
  if (q === 0 && p === 0) return [];
  const out: UnitProperty[] = [];
  if (p !== 0) out.push(t('CPUQuotaPeriodUSec', intText(p, '/linux/resources/cpu/period')));
  let perSec = UINT64_MAX;
  if (q > 0) {
    let us = Math.floor((q * 1_000_000) / (p || DEFAULT_CPU_PERIOD));
    if (us % 10000 !== 0) us = (Math.floor(us / 10000) + 1) * 10000;
    perSec = String(us);
  }
  out.push(t('CPUQuotaPerSecUSec', perSec));
  return out;
}

/**
 * The device rules as DevicePolicy and DeviceAllow, when systemd can say them: it knows only allow-lists. A list
 * that ends up allowing everything is DevicePolicy=auto; one that denies everything and then allows some is
 * strict with those allows (`/dev/char/M:N` for one device, `char-M` for a major, `char-*` for a type, as runc
 * writes them). Any other list (a deny after an allow, a rule systemd cannot name) gets DevicePolicy=auto: the
 * device filter pocrun attaches itself enforces the rules, beside systemd's own program.
 */
export function deviceProperties(rules: readonly LinuxDeviceCgroup[] | undefined): UnitProperty[] {
  if (!rules) return [];
  const auto: UnitProperty[] = [
    { name: 'DevicePolicy', sig: 's', value: 'auto' },
    { name: 'DeviceAllow', sig: 'a(ss)', value: [] },
  ];
  const isAll = (r: LinuxDeviceCgroup) =>
    (r.type ?? 'a') === 'a' && (r.major ?? -1) === -1 && (r.minor ?? -1) === -1 && [...(r.access ?? 'rwm')].sort().join('') === 'mrw';
  let lastAll = -1;
  rules.forEach((r, i) => {
    if (isAll(r)) lastAll = i;
  });
  if (lastAll < 0) {
    // No rule about every device: the kernel's default on v1 (and systemd's auto) is to allow; only denies
    // could follow, which systemd cannot say.
    return auto;
  }
  const rest = rules.slice(lastAll + 1);
  if (rules[lastAll]!.allow) return auto;
  if (rest.some((r) => !r.allow)) return auto;
  const allow: Array<[string, string]> = [];
  for (const r of rest) {
    const type = r.type ?? 'a';
    const access = r.access ?? 'rwm';
    const major = r.major ?? -1;
    const minor = r.minor ?? -1;
    const kinds = type === 'a' ? ['char', 'block'] : [type === 'c' ? 'char' : 'block'];
    if (major === -1 && minor !== -1) return auto; // "*:N": systemd has no name for it
    for (const kind of kinds) {
      if (major === -1) allow.push([`${kind}-*`, access]);
      else if (minor === -1) allow.push([`${kind}-${major}`, access]);
      else allow.push([`/dev/${kind}/${major}:${minor}`, access]);
    }
  }
  return [
    { name: 'DevicePolicy', sig: 's', value: 'strict' },
    { name: 'DeviceAllow', sig: 'a(ss)', value: allow },
  ];
}

/**
 * linux.resources as unit properties, for cgroup v2 (v2.go's genV2ResourcesProperties) or v1 (v1.go's
 * genV1ResourcesProperties: MemoryLimit, CPUShares, BlockIOWeight). Fields with no property are left to the
 * cgroupfs driver, which writes every field to the files anyway.
 */
export function resourceProperties(r: LinuxResources, version: 1 | 2): UnitProperty[] {
  const out: UnitProperty[] = [...deviceProperties(r.devices)];
  const m = r.memory;
  if (m?.limit) out.push(t(version === 2 ? 'MemoryMax' : 'MemoryLimit', limit(m.limit, '/linux/resources/memory/limit')));
  if (version === 2 && m?.reservation) out.push(t('MemoryLow', limit(m.reservation, '/linux/resources/memory/reservation')));
  if (version === 2 && m) {
    let swap: number | undefined;
    try {
      swap = memorySwapToV2(m.swap, m.limit);
    } catch (err) {
      throw (err as PocrunError).wrap('/linux/resources');
    }
    if (swap !== undefined) out.push(t('MemorySwapMax', limit(swap, '/linux/resources/memory/swap')));
  }
  const c = r.cpu;
  if (c?.shares) {
    if (version === 2) out.push(t('CPUWeight', String(cpuSharesToWeight(c.shares))));
    else out.push(t('CPUShares', intText(c.shares, '/linux/resources/cpu/shares')));
  }
  out.push(...cpuQuota(c?.quota, c?.period));
  if (r.pids?.limit !== undefined && r.pids.limit !== 0) out.push(t('TasksMax', limit(r.pids.limit, '/linux/resources/pids/limit')));
  if (version === 2) {
    if (c?.cpus) out.push({ name: 'AllowedCPUs', sig: 'ay', value: rangeToBits(c.cpus, '/linux/resources/cpu/cpus') });
    if (c?.mems) out.push({ name: 'AllowedMemoryNodes', sig: 'ay', value: rangeToBits(c.mems, '/linux/resources/cpu/mems') });
  }
  const w = r.blockIO?.weight;
  if (w) {
    if (version === 2) out.push(t('IOWeight', String(blkioWeightToIOWeight(w))));
    else out.push(t('BlockIOWeight', intText(w, '/linux/resources/blockIO/weight')));
  }
  if (version === 2) out.push(...unifiedProperties(r.unified ?? {}));
  return out;
}

/** The `unified` files systemd has properties for (runc's unifiedResToSystemdProps); the rest stay files only. */
function unifiedProperties(unified: Record<string, string>): UnitProperty[] {
  const out: UnitProperty[] = [];
  const num = (key: string, v: string) => {
    if (v === 'max') return UINT64_MAX;
    if (!/^\d+$/.test(v)) throw new PocrunError(`/linux/resources/unified/${key}: ${JSON.stringify(v)} is not a number or "max"`);
    return v;
  };
  const memory: Record<string, string> = {
    'memory.high': 'MemoryHigh', 'memory.low': 'MemoryLow', 'memory.min': 'MemoryMin', 'memory.max': 'MemoryMax', 'memory.swap.max': 'MemorySwapMax',
  };
  for (const [key, raw] of Object.entries(unified)) {
    const v = raw.trim();
    if (key in memory) out.push(t(memory[key]!, num(key, v)));
    else if (key === 'pids.max') out.push(t('TasksMax', num(key, v)));
    else if (key === 'cpu.weight') out.push(t('CPUWeight', num(key, v)));
    else if (key === 'cpuset.cpus') out.push({ name: 'AllowedCPUs', sig: 'ay', value: rangeToBits(v, `/linux/resources/unified/${key}`) });
    else if (key === 'cpuset.mems') out.push({ name: 'AllowedMemoryNodes', sig: 'ay', value: rangeToBits(v, `/linux/resources/unified/${key}`) });
    else if (key === 'cpu.max') {
      const [q, p] = v.split(/\s+/);
      const quota = q === 'max' ? 0 : Number(num(key, q ?? ''));
      out.push(...cpuQuota(quota, p === undefined ? DEFAULT_CPU_PERIOD : Number(num(key, p))));
    }
  }
  return out;
}

/** The arguments pocrun-systemd reads a property list from (see src/native/pocrun-systemd.c). */
export function encodeProperties(props: readonly UnitProperty[]): string[] {
  const out: string[] = [];
  for (const p of props) {
    out.push(p.name, p.sig);
    if (p.sig === 'b') out.push(p.value ? '1' : '0');
    else if (p.sig === 'a(ss)') out.push(String(p.value.length), ...p.value.flat());
    else if (Array.isArray(p.value)) out.push(String(p.value.length), ...p.value);
    else out.push(p.value);
  }
  return out;
}
