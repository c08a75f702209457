/**
 * cgroup v1 driver: one hierarchy per mounted controller (or per group of co-mounted controllers, such as
 * cpu,cpuacct). The container's cgroup is made in every mounted controller. Writes follow runc's order and its
 * workarounds for inter-dependent files (memory/memsw, cfs period/quota/burst, rt period/runtime).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { UserError, PocrunError } from '../errors.js';
import { checkPageSize, deviceRule, intText, parseCpuList } from './convert.js';
import {
  RETRY_DELAYS_MS,
  causeCode,
  isDir,
  mkdirs,
  readCgroupFile,
  readKeyed,
  readNumber,
  readPidsRecursive,
  removeCgroupTree,
  signalAllFrozen,
  sleepMs,
  undoMkdirs,
  writeCgroupFile,
  writeError,
  errnoText,
} from './fs.js';
import type { CgroupDriver, FreezerState } from './index.js';
import { checkCgroupPath } from './path.js';
import type { LinuxResources } from './resources.js';
import { type BlkioEntry, type CgroupStats, emptyStats, memoryEntry, omitEmpty, parseBlkioV1 } from './stats.js';

/** runc's order of v1 subsystems: cpuset first (its files must be filled before anything joins). */
const ORDER = ['cpuset', 'devices', 'memory', 'cpu', 'cpuacct', 'pids', 'blkio', 'hugetlb', 'net_cls', 'net_prio', 'perf_event', 'freezer', 'rdma', 'misc'];

/** USER_HZ, the unit of cpuacct.stat (runc assumes 100 as well). */
const CLOCK_TICKS = 100;

export class CgroupV1Driver implements CgroupDriver {
  readonly version = 1 as const;

  /**
   * @param fsRoot the cgroupfs root (/sys/fs/cgroup), for messages
   * @param mounts controller → mount point, e.g. { memory: '/sys/fs/cgroup/memory', cpu: '/sys/fs/cgroup/cpu' }
   */
  constructor(
    readonly fsRoot: string,
    readonly mounts: Readonly<Record<string, string>>,
  ) {}

  /** Distinct mount points, in runc's controller order. */
  hierarchies(): string[] {
    const names = [...ORDER, ...Object.keys(this.mounts).filter((c) => !ORDER.includes(c))];
    const out: string[] = [];
    for (const c of names) {
      const m = this.mounts[c];
      if (m && !out.includes(m)) out.push(m);
    }
    return out;
  }

  private dir(controller: string, path: string): string | undefined {
    const m = this.mounts[controller];
    return m === undefined ? undefined : m + path;
  }

  private need(path: string, controller: string, what: string): string {
    const dir = this.dir(controller, path);
    if (dir === undefined) {
      throw new PocrunError(`cgroup ${path}: ${what} needs the ${controller} controller, which is not mounted (cgroup v1)`);
    }
    return dir;
  }

  create(path: string, resources: LinuxResources = {}): void {
    path = checkCgroupPath(path);
    this.check(path, resources);
    const created: string[] = [];
    try {
      for (const m of this.hierarchies()) {
        try {
          created.push(...mkdirs(m + path, m));
        } catch (err) {
          throw new PocrunError(`cgroup ${path}: mkdir in ${m}: ${errnoText(err)}`, 1, { cause: err });
        }
      }
      if (this.mounts.cpuset) this.fillCpuset(path);
      this.apply(path, resources);
    } catch (err) {
      undoMkdirs(created);
      throw err;
    }
  }

  /** A new v1 cpuset cgroup has empty cpuset.cpus and .mems, and nothing can join it: copy the parent's. */
  private fillCpuset(path: string): void {
    const mount = this.mounts.cpuset!;
    let parent = mount;
    for (const part of path.split('/').filter(Boolean)) {
      const dir = `${parent}/${part}`;
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        if ((readCgroupFile(dir, file) ?? '').trim() !== '') continue;
        const value = (readCgroupFile(parent, file) ?? '').trim();
        if (value) writeCgroupFile(path, dir, file, value);
      }
      parent = dir;
    }
  }

  procsFiles(path: string): string[] {
    path = checkCgroupPath(path);
    return this.hierarchies().map((m) => `${m}${path}/cgroup.procs`);
  }

  ownProcsFile(selfCgroup = readFileSync('/proc/self/cgroup', 'utf8')): string | undefined {
    for (const line of selfCgroup.split('\n')) {
      const [, controllers = '', path = ''] = line.split(':');
      const mount = controllers.split(',').map((c) => this.mounts[c]).find(Boolean);
      if (mount) return `${mount}${path === '/' ? '' : path}/cgroup.procs`;
    }
    return undefined;
  }

  /** Fails before any write when a resource cannot be applied on this host. */
  private check(path: string, r: LinuxResources): void {
    if (r.unified && Object.keys(r.unified).length > 0) {
      throw new PocrunError(`cgroup ${path}: unified resources need cgroup v2 (this host uses cgroup v1)`);
    }
    const m = r.memory;
    if (m) {
      const set = (['limit', 'reservation', 'swap', 'kernelTCP', 'swappiness', 'disableOOMKiller', 'useHierarchy'] as const).filter(
        (k) => m[k] !== undefined,
      );
      if (set.length) this.need(path, 'memory', `memory.${set[0]}`);
    }
    const c = r.cpu;
    if (c) {
      const set = (['shares', 'quota', 'burst', 'period', 'realtimeRuntime', 'realtimePeriod', 'idle'] as const).filter(
        (k) => c[k] !== undefined,
      );
      if (set.length) this.need(path, 'cpu', `cpu.${set[0]}`);
      if (c.cpus) this.need(path, 'cpuset', 'cpu.cpus');
      if (c.mems) this.need(path, 'cpuset', 'cpu.mems');
    }
    if (r.pids?.limit !== undefined) this.need(path, 'pids', 'pids.limit');
    if (r.devices) this.need(path, 'devices', 'devices');
    const b = r.blockIO;
    if (b && Object.values(b).some((v) => v !== undefined && !(Array.isArray(v) && v.length === 0))) {
      this.need(path, 'blkio', 'blockIO');
    }
    if (r.hugepageLimits?.length) this.need(path, 'hugetlb', 'hugepageLimits');
    if (r.network?.classID !== undefined) this.need(path, 'net_cls', 'network.classID');
    if (r.network?.priorities?.length) this.need(path, 'net_prio', 'network.priorities');
    if (r.rdma && Object.keys(r.rdma).length) this.need(path, 'rdma', 'rdma');
  }

  apply(path: string, r: LinuxResources): void {
    path = checkCgroupPath(path);
    this.check(path, r);
    const write = (dir: string, file: string, value: string) => writeCgroupFile(path, dir, file, value);

    // cpuset
    if (r.cpu?.cpus) write(this.dir('cpuset', path)!, 'cpuset.cpus', r.cpu.cpus);
    if (r.cpu?.mems) write(this.dir('cpuset', path)!, 'cpuset.mems', r.cpu.mems);

    // devices: deny everything, then the rules in order (the runtime has added the default allowed devices).
    if (r.devices) {
      const dir = this.dir('devices', path)!;
      const rules = r.devices.map((d, i) => ({ allow: d.allow, line: deviceRule(d, `devices/${i}`) }));
      write(dir, 'devices.deny', 'a');
      for (const rule of rules) write(dir, rule.allow ? 'devices.allow' : 'devices.deny', rule.line);
    }

    if (r.memory) this.applyMemory(path, r);
    if (r.cpu) this.applyCpu(path, r);

    if (r.pids?.limit !== undefined) {
      const limit = r.pids.limit;
      write(this.dir('pids', path)!, 'pids.max', limit < 0 ? 'max' : intText(limit, 'pids.limit'));
    }

    if (r.blockIO) this.applyBlkio(path, r);

    if (r.hugepageLimits?.length) {
      const dir = this.dir('hugetlb', path)!;
      let rsvd = true;
      for (const h of r.hugepageLimits) {
        const size = checkPageSize(h.pageSize);
        const value = intText(h.limit, 'hugepageLimits.limit');
        write(dir, `hugetlb.${size}.limit_in_bytes`, value);
        // Reservation accounting (Linux 5.7+), when the kernel has it, as runc does.
        if (rsvd && readCgroupFile(dir, `hugetlb.${size}.rsvd.limit_in_bytes`) !== undefined) {
          write(dir, `hugetlb.${size}.rsvd.limit_in_bytes`, value);
        } else rsvd = false;
      }
    }

    if (r.network?.classID !== undefined) {
      write(this.dir('net_cls', path)!, 'net_cls.classid', intText(r.network.classID, 'network.classID'));
    }
    for (const p of r.network?.priorities ?? []) {
      write(this.dir('net_prio', path)!, 'net_prio.ifpriomap', `${p.name} ${intText(p.priority, 'network.priorities.priority')}`);
    }

    for (const [device, limits] of Object.entries(r.rdma ?? {})) {
      let line = device;
      if (limits.hcaHandles !== undefined) line += ` hca_handle=${intText(limits.hcaHandles, `rdma.${device}.hcaHandles`)}`;
      if (limits.hcaObjects !== undefined) line += ` hca_object=${intText(limits.hcaObjects, `rdma.${device}.hcaObjects`)}`;
      write(this.dir('rdma', path)!, 'rdma.max', line);
    }
  }

  private applyMemory(path: string, r: LinuxResources): void {
    const m = r.memory!;
    if (Object.values(m).every((v) => v === undefined)) return;
    const dir = this.dir('memory', path)!;
    const write = (file: string, value: string) => writeCgroupFile(path, dir, file, value);
    // checkBeforeUpdate needs nothing here: the v1 kernel itself refuses a limit below the usage (EBUSY).
    const writeLimit = (file: string, usageFile: string, value: number, field: string) => {
      const text = intText(value, field);
      try {
        write(file, text);
      } catch (err) {
        if (causeCode(err) !== 'EBUSY') throw err;
        const usage = readNumber(dir, usageFile);
        throw writeError(path, file, text, (err as Error).cause, `: the new limit is below the current usage (${usage} bytes)`);
      }
    };

    let limit = m.limit ?? 0;
    let swap = m.swap ?? 0;
    // Unlimited memory with swap unset means both unlimited (runc).
    if (limit === -1 && swap === 0) swap = -1;
    const setMemory = () => limit !== 0 && writeLimit('memory.limit_in_bytes', 'memory.usage_in_bytes', limit, 'memory.limit');
    const setSwap = () => {
      if (swap === 0) return;
      if (readCgroupFile(dir, 'memory.memsw.limit_in_bytes') === undefined) {
        throw new PocrunError(`cgroup ${path}: memory.swap: the kernel has no swap accounting (memory.memsw.limit_in_bytes is missing)`);
      }
      writeLimit('memory.memsw.limit_in_bytes', 'memory.memsw.usage_in_bytes', swap, 'memory.swap');
    };
    // memsw must stay >= limit at every step: raise memsw first when it grows, lower the limit first otherwise.
    if (limit !== 0 && swap !== 0 && (swap === -1 || readNumber(dir, 'memory.limit_in_bytes') < swap)) {
      setSwap();
      setMemory();
    } else {
      setMemory();
      setSwap();
    }
    if (m.reservation) write('memory.soft_limit_in_bytes', intText(m.reservation, 'memory.reservation'));
    // m.kernel is ignored, as runc does: kernel memory limits are deprecated and no-ops since Linux 5.16.
    if (m.kernelTCP) write('memory.kmem.tcp.limit_in_bytes', intText(m.kernelTCP, 'memory.kernelTCP'));
    if (m.swappiness !== undefined && m.swappiness !== -1) {
      if (m.swappiness < 0 || m.swappiness > 100) {
        throw new PocrunError(`cgroup ${path}: memory.swappiness ${m.swappiness} is not in 0..100`);
      }
      write('memory.swappiness', intText(m.swappiness, 'memory.swappiness'));
    }
    if (m.disableOOMKiller) write('memory.oom_control', '1');
    if (m.useHierarchy !== undefined) write('memory.use_hierarchy', m.useHierarchy ? '1' : '0');
  }

  private applyCpu(path: string, r: LinuxResources): void {
    const c = r.cpu!;
    const keys = ['shares', 'quota', 'burst', 'period', 'realtimeRuntime', 'realtimePeriod', 'idle'] as const;
    if (keys.every((k) => c[k] === undefined)) return;
    const dir = this.dir('cpu', path)!;
    const write = (file: string, value: string) => writeCgroupFile(path, dir, file, value);
    /** Writes; an EINVAL is put off (returns false) when `retryLater` says a later write may make it valid. */
    const tryWrite = (file: string, value: string, retryLater: boolean): boolean => {
      try {
        write(file, value);
        return true;
      } catch (err) {
        if (retryLater && causeCode(err) === 'EINVAL') return false;
        throw err;
      }
    };

    // Realtime: period and runtime depend on each other; a rejected period is retried after the runtime.
    const rtRuntime = c.realtimeRuntime ?? 0;
    const rtPeriod = c.realtimePeriod ?? 0;
    let rtPeriodPending = false;
    if (rtPeriod !== 0) {
      rtPeriodPending = !tryWrite('cpu.rt_period_us', intText(rtPeriod, 'cpu.realtimePeriod'), rtRuntime !== 0);
    }
    if (rtRuntime !== 0) {
      write('cpu.rt_runtime_us', intText(rtRuntime, 'cpu.realtimeRuntime'));
      if (rtPeriodPending) write('cpu.rt_period_us', intText(rtPeriod, 'cpu.realtimePeriod'));
    }

    if (c.shares) {
      write('cpu.shares', intText(c.shares, 'cpu.shares'));
      const got = readNumber(dir, 'cpu.shares');
      if (c.shares > got) throw new PocrunError(`cgroup ${path}: cpu.shares ${c.shares}: the maximum allowed is ${got}`);
      if (c.shares < got) throw new PocrunError(`cgroup ${path}: cpu.shares ${c.shares}: the minimum allowed is ${got}`);
    }

    // CFS: a period or burst the kernel rejects against the old quota is retried after the quota is written.
    const quota = c.quota ?? 0;
    const period = c.period ?? 0;
    let periodPending = false;
    let burstPending = false;
    if (period !== 0) periodPending = !tryWrite('cpu.cfs_period_us', intText(period, 'cpu.period'), quota !== 0);
    if (c.burst !== undefined) {
      if (quota > 0 && c.burst > quota) throw new PocrunError(`cgroup ${path}: cpu.burst ${c.burst} is larger than cpu.quota ${quota}`);
      burstPending = !tryWrite('cpu.cfs_burst_us', intText(c.burst, 'cpu.burst'), quota !== 0);
    }
    if (quota !== 0) {
      write('cpu.cfs_quota_us', intText(quota, 'cpu.quota'));
      if (periodPending) write('cpu.cfs_period_us', intText(period, 'cpu.period'));
      if (burstPending) write('cpu.cfs_burst_us', intText(c.burst!, 'cpu.burst'));
    }
    if (c.idle !== undefined) write('cpu.idle', intText(c.idle, 'cpu.idle'));
  }

  private applyBlkio(path: string, r: LinuxResources): void {
    const b = r.blockIO!;
    const dir = this.dir('blkio', path);
    if (!dir) return; // check() has refused a non-empty blockIO already
    const write = (file: string, value: string) => writeCgroupFile(path, dir, file, value);
    // BFQ (the only proportional scheduler since Linux 5.0) names its files blkio.bfq.*; CFQ had blkio.weight.
    const bfq = readCgroupFile(dir, 'blkio.bfq.weight') !== undefined;
    const weightFile = bfq ? 'blkio.bfq.weight' : 'blkio.weight';
    const weightDeviceFile = bfq ? 'blkio.bfq.weight_device' : 'blkio.weight_device';
    // 0 means "not set", as in runc.
    if (b.weight) write(weightFile, intText(b.weight, 'blockIO.weight'));
    if (b.leafWeight) write('blkio.leaf_weight', intText(b.leafWeight, 'blockIO.leafWeight'));
    for (const wd of b.weightDevice ?? []) {
      const dev = `${intText(wd.major, 'blockIO.weightDevice.major')}:${intText(wd.minor, 'blockIO.weightDevice.minor')}`;
      if (wd.weight) write(weightDeviceFile, `${dev} ${intText(wd.weight, 'blockIO.weightDevice.weight')}`);
      if (wd.leafWeight) write('blkio.leaf_weight_device', `${dev} ${intText(wd.leafWeight, 'blockIO.weightDevice.leafWeight')}`);
    }
    const throttles = [
      ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
      ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
      ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
      ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
    ] as const;
    for (const [field, file] of throttles) {
      for (const td of b[field] ?? []) {
        write(file, `${intText(td.major, `blockIO.${field}.major`)}:${intText(td.minor, `blockIO.${field}.minor`)} ${intText(td.rate, `blockIO.${field}.rate`)}`);
      }
    }
  }

  /** v1 writes device rules in `apply`. */
  deviceFilter(): undefined {
    return undefined;
  }

  pids(path: string): number[] {
    path = checkCgroupPath(path);
    const all = new Set<number>();
    for (const m of this.hierarchies()) readPidsRecursive(m + path, all);
    return [...all].sort((a, b) => a - b);
  }

  freeze(path: string): void {
    path = checkCgroupPath(path);
    const dir = this.need(path, 'freezer', 'freeze');
    const write = (value: string) => writeCgroupFile(path, dir, 'freezer.state', value);
    // runc's loop: write FROZEN until the state reads FROZEN; thaw now and then so that a cgroup whose processes
    // keep forking can still be caught.
    for (let i = 0; i < 1000; i++) {
      if (i % 50 === 49) {
        write('THAWED');
        sleepMs(10);
      }
      write('FROZEN');
      if (i % 25 === 24) sleepMs(1);
      const state = (readCgroupFile(dir, 'freezer.state') ?? '').trim();
      if (state === 'FROZEN') return;
      if (state !== 'FREEZING') throw new PocrunError(`cgroup ${path}: freezer.state is ${JSON.stringify(state)} after writing FROZEN`);
    }
    write('THAWED');
    throw new PocrunError(`cgroup ${path}: could not freeze (processes stayed in FREEZING); thawed again`);
  }

  /** Nothing to do (no error) when there is no freezer or no such cgroup in it: nothing can be frozen. */
  thaw(path: string): void {
    path = checkCgroupPath(path);
    const dir = this.dir('freezer', path);
    if (dir === undefined || !isDir(dir)) return;
    writeCgroupFile(path, dir, 'freezer.state', 'THAWED');
    for (const delay of RETRY_DELAYS_MS) {
      if ((readCgroupFile(dir, 'freezer.state') ?? '').trim() === 'THAWED') return;
      sleepMs(delay);
    }
  }

  state(path: string): FreezerState {
    path = checkCgroupPath(path);
    const dir = this.dir('freezer', path);
    if (dir === undefined) return 'thawed';
    const state = (readCgroupFile(dir, 'freezer.state') ?? '').trim();
    if (state !== 'FROZEN' && state !== 'FREEZING') return 'thawed';
    // As runc (fs GetState): frozen only through an ancestor (freezer.self_freezing 0) is not paused. A kernel
    // without the file: frozen, as it says.
    if ((readCgroupFile(dir, 'freezer.self_freezing') ?? '').trim() === '0') return 'thawed';
    return state === 'FROZEN' ? 'frozen' : 'freezing';
  }

  stats(path: string): CgroupStats {
    path = checkCgroupPath(path);
    const s = emptyStats();

    const acct = this.dir('cpuacct', path);
    if (acct && isDir(acct)) {
      const list = (file: string) =>
        (readCgroupFile(acct, file) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
      const st = readKeyed(acct, 'cpuacct.stat');
      s.cpu.usage = {
        ...omitEmpty({
          total: readNumber(acct, 'cpuacct.usage'),
          percpu: list('cpuacct.usage_percpu'),
          percpu_kernel: list('cpuacct.usage_percpu_sys'),
          percpu_user: list('cpuacct.usage_percpu_user'),
        }),
        kernel: ((st.system ?? 0) * 1e9) / CLOCK_TICKS,
        user: ((st.user ?? 0) * 1e9) / CLOCK_TICKS,
      };
    }
    const cpu = this.dir('cpu', path);
    if (cpu && isDir(cpu)) {
      const st = readKeyed(cpu, 'cpu.stat');
      s.cpu.throttling = omitEmpty({
        periods: st.nr_periods,
        throttledPeriods: st.nr_throttled,
        throttledTime: st.throttled_time,
      });
    }

    const cpuset = this.dir('cpuset', path);
    if (cpuset && isDir(cpuset)) {
      const n = (f: string) => readNumber(cpuset, `cpuset.${f}`);
      s.cpuset = {
        ...omitEmpty({ cpus: parseCpuList(readCgroupFile(cpuset, 'cpuset.cpus') ?? '') }),
        cpu_exclusive: n('cpu_exclusive'),
        ...omitEmpty({ mems: parseCpuList(readCgroupFile(cpuset, 'cpuset.mems') ?? '') }),
        mem_hardwall: n('mem_hardwall'),
        mem_exclusive: n('mem_exclusive'),
        memory_migrate: n('memory_migrate'),
        memory_spread_page: n('memory_spread_page'),
        memory_spread_slab: n('memory_spread_slab'),
        memory_pressure: n('memory_pressure'),
        sched_load_balance: n('sched_load_balance'),
        sched_relax_domain_level: n('sched_relax_domain_level'),
      };
    }

    const mem = this.dir('memory', path);
    if (mem && isDir(mem)) {
      const raw = readKeyed(mem, 'memory.stat');
      const entry = (prefix: string) =>
        memoryEntry(
          readNumber(mem, `${prefix}limit_in_bytes`),
          readNumber(mem, `${prefix}usage_in_bytes`),
          readNumber(mem, `${prefix}max_usage_in_bytes`),
          readNumber(mem, `${prefix}failcnt`),
        );
      s.memory = {
        ...(raw.cache ? { cache: raw.cache } : {}),
        usage: entry('memory.'),
        swap: entry('memory.memsw.'),
        kernel: entry('memory.kmem.'),
        kernelTCP: entry('memory.kmem.tcp.'),
        ...(Object.keys(raw).length ? { raw } : {}),
      };
    }

    const pids = this.dir('pids', path);
    if (pids && isDir(pids)) {
      s.pids = omitEmpty({ current: readNumber(pids, 'pids.current'), limit: readNumber(pids, 'pids.max') });
    }

    const blkio = this.dir('blkio', path);
    if (blkio && isDir(blkio)) s.blkio = blkioStats(blkio);

    const huge = this.dir('hugetlb', path);
    if (huge && isDir(huge)) {
      for (const f of readdirSync(huge)) {
        const m = /^hugetlb\.([0-9]+[KMGTP]?B)\.usage_in_bytes$/.exec(f);
        if (!m) continue;
        const size = m[1]!;
        s.hugetlb[size] = {
          ...omitEmpty({
            usage: readNumber(huge, `hugetlb.${size}.usage_in_bytes`),
            max: readNumber(huge, `hugetlb.${size}.max_usage_in_bytes`),
          }),
          failcnt: readNumber(huge, `hugetlb.${size}.failcnt`),
        };
      }
    }
    return s;
  }

  killAll(path: string, signal: NodeJS.Signals | number = 'SIGKILL'): void {
    path = checkCgroupPath(path);
    const wasFrozen = signalAllFrozen(this, path, signal, this.mounts.freezer !== undefined && this.exists(path));
    // A cgroup the user had paused stays paused, except for SIGKILL: frozen tasks only die once thawed (v1).
    if (wasFrozen && (signal === 'SIGKILL' || signal === 9)) this.thaw(path);
  }

  destroy(path: string): void {
    path = checkCgroupPath(path);
    const errors: PocrunError[] = [];
    for (const m of this.hierarchies()) {
      try {
        removeCgroupTree(path, m + path);
      } catch (err) {
        errors.push(err instanceof UserError ? err : new PocrunError(`cgroup ${path}: ${errnoText(err)}`, 1, { cause: err }));
      }
    }
    if (errors.length === 1) throw errors[0]!;
    if (errors.length > 1) throw new PocrunError(errors.map((e) => e.message).join('; '), 1, { cause: errors[0] });
  }

  exists(path: string): boolean {
    path = checkCgroupPath(path);
    return this.hierarchies().some((m) => isDir(m + path));
  }

  dirs(path: string): Record<string, string> {
    path = checkCgroupPath(path);
    return Object.fromEntries(Object.entries(this.mounts).map(([controller, m]) => [controller, m + path]));
  }
}

/** runc's choice of blkio statistics: CFQ's when present, else BFQ's, else the throttling layer's. */
function blkioStats(dir: string): CgroupStats['blkio'] {
  const read = (file: string): BlkioEntry[] | undefined => {
    const text = readCgroupFile(dir, file);
    return text === undefined ? undefined : parseBlkioV1(text);
  };
  if (readCgroupFile(dir, 'blkio.io_serviced_recursive') !== undefined) {
    return omitEmpty({
      ioServiceBytesRecursive: read('blkio.io_service_bytes_recursive'),
      ioServicedRecursive: read('blkio.io_serviced_recursive'),
      ioQueueRecursive: read('blkio.io_queued_recursive'),
      ioServiceTimeRecursive: read('blkio.io_service_time_recursive'),
      ioWaitTimeRecursive: read('blkio.io_wait_time_recursive'),
      ioMergedRecursive: read('blkio.io_merged_recursive'),
      ioTimeRecursive: read('blkio.time_recursive'),
      sectorsRecursive: read('blkio.sectors_recursive'),
    });
  }
  if (readCgroupFile(dir, 'blkio.bfq.io_serviced_recursive') !== undefined) {
    return omitEmpty({
      ioServiceBytesRecursive: read('blkio.bfq.io_service_bytes_recursive'),
      ioServicedRecursive: read('blkio.bfq.io_serviced_recursive'),
    });
  }
  return omitEmpty({
    ioServiceBytesRecursive: read('blkio.throttle.io_service_bytes_recursive'),
    ioServicedRecursive: read('blkio.throttle.io_serviced_recursive'),
  });
}
