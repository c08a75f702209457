/**
 * The `data` of `runc events --stats` ({"type":"stats","id":...,"data":<CgroupStats>}), with runc's JSON names
 * (runc's types/events.go). Fields runc tags `omitempty` are left out when zero or empty, as Go's encoder does.
 * Numbers are JS numbers: values above 2^53 (an unlimited memory limit) print rounded.
 */

export interface MemoryEntry {
  limit: number;
  usage?: number;
  max?: number;
  failcnt: number;
}

export interface BlkioEntry {
  major?: number;
  minor?: number;
  op?: string;
  value?: number;
}

export interface HugetlbStats {
  usage?: number;
  max?: number;
  failcnt: number;
}

export interface CgroupStats {
  cpu: {
    usage: {
      total?: number;
      percpu?: number[];
      percpu_kernel?: number[];
      percpu_user?: number[];
      kernel: number;
      user: number;
    };
    throttling: { periods?: number; throttledPeriods?: number; throttledTime?: number };
  };
  cpuset: {
    cpus?: number[];
    cpu_exclusive: number;
    mems?: number[];
    mem_hardwall: number;
    mem_exclusive: number;
    memory_migrate: number;
    memory_spread_page: number;
    memory_spread_slab: number;
    memory_pressure: number;
    sched_load_balance: number;
    sched_relax_domain_level: number;
  };
  memory: {
    cache?: number;
    usage: MemoryEntry;
    swap: MemoryEntry;
    kernel: MemoryEntry;
    kernelTCP: MemoryEntry;
    raw?: Record<string, number>;
  };
  pids: { current?: number; limit?: number };
  blkio: {
    ioServiceBytesRecursive?: BlkioEntry[];
    ioServicedRecursive?: BlkioEntry[];
    ioQueueRecursive?: BlkioEntry[];
    ioServiceTimeRecursive?: BlkioEntry[];
    ioWaitTimeRecursive?: BlkioEntry[];
    ioMergedRecursive?: BlkioEntry[];
    ioTimeRecursive?: BlkioEntry[];
    sectorsRecursive?: BlkioEntry[];
  };
  hugetlb: Record<string, HugetlbStats>;
  intel_rdt: Record<string, never>;
  network_interfaces: null;
}

/** Drops the keys whose value is 0, undefined, an empty array or an empty object (Go's omitempty). */
export function omitEmpty<T extends object>(obj: T): T {
  for (const [key, value] of Object.entries(obj)) {
    const empty =
      value === undefined ||
      value === 0 ||
      value === '' ||
      (Array.isArray(value) && value.length === 0) ||
      (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0);
    if (empty) delete (obj as Record<string, unknown>)[key];
  }
  return obj;
}

export function memoryEntry(limit: number, usage: number, max: number, failcnt: number): MemoryEntry {
  return { limit, ...(usage ? { usage } : {}), ...(max ? { max } : {}), failcnt };
}

export function emptyStats(): CgroupStats {
  return {
    cpu: { usage: { kernel: 0, user: 0 }, throttling: {} },
    cpuset: {
      cpu_exclusive: 0,
      mem_hardwall: 0,
      mem_exclusive: 0,
      memory_migrate: 0,
      memory_spread_page: 0,
      memory_spread_slab: 0,
      memory_pressure: 0,
      sched_load_balance: 0,
      sched_relax_domain_level: 0,
    },
    memory: {
      usage: { limit: 0, failcnt: 0 },
      swap: { limit: 0, failcnt: 0 },
      kernel: { limit: 0, failcnt: 0 },
      kernelTCP: { limit: 0, failcnt: 0 },
    },
    pids: {},
    blkio: {},
    hugetlb: {},
    intel_rdt: {},
    network_interfaces: null,
  };
}

/**
 * v1 blkio files ("8:0 Read 4096" lines, a final "Total" line) → entries. v2 io.stat is parsed by the v2 driver.
 */
export function parseBlkioV1(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  if (!text) return out;
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(fields[0] ?? '');
    if (!dev) continue;
    const major = Number(dev[1]);
    const minor = Number(dev[2]);
    if (fields.length === 3) out.push(omitEmpty({ major, minor, op: fields[1], value: Number(fields[2]) }));
    else if (fields.length === 2) out.push(omitEmpty({ major, minor, op: '', value: Number(fields[1]) }));
  }
  return out;
}
