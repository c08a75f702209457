/**
 * cgroup v2 driver: one unified hierarchy rooted at `fsRoot`. Controllers are enabled in every ancestor's
 * cgroup.subtree_control on create (as runc does; failures there surface when a file of that controller is
 * written). v1-style values are converted with runc's formulas (see convert.ts).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { PocrunError } from '../errors.js';
import {
  blkioWeightToIOWeight,
  checkPageSize,
  cpuMax,
  cpuSharesToWeight,
  intText,
  memorySwapToV2,
  parseCpuList,
  v2Limit,
} from './convert.js';
import {
  RETRY_DELAYS_MS,
  causeCode,
  errnoText,
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
  MAX_U64,
} from './fs.js';
import { deviceFilter } from './device-filter.js';
import type { CgroupDriver, DeviceFilter, FreezerState } from './index.js';
import { checkCgroupPath } from './path.js';
import type { LinuxDeviceCgroup, LinuxResources } from './resources.js';
import { type BlkioEntry, type CgroupStats, emptyStats, memoryEntry, omitEmpty } from './stats.js';

const FREEZE_TIMEOUT_MS = 2000;

/** Where the resources are in config.json: errors name the field as a JSON pointer below it. */
const RESOURCES = '/linux/resources';

/** A key as a JSON pointer token (RFC 6901: ~ and / escaped). */
const pointerToken = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

const words = (text: string | undefined) => (text ?? '').trim().split(/\s+/).filter(Boolean);

export class CgroupV2Driver implements CgroupDriver {
  readonly version = 2 as const;

  /**
   * @param fsRoot the cgroup2 mount point (/sys/fs/cgroup)
   * @param options.freezeTimeoutMs how long freeze waits for cgroup.events to say `frozen 1` (default 2000)
   */
  constructor(
    readonly fsRoot: string,
    readonly options: { freezeTimeoutMs?: number } = {},
  ) {}

  private dir(path: string): string {
    return this.fsRoot + path;
  }

  /**
   * Writes one file. A missing file is, most of the time, a controller that is not enabled for this cgroup:
   * say which one.
   */
  private write(path: string, file: string, value: string, field?: string): void {
    const dir = this.dir(path);
    try {
      writeCgroupFile(path, dir, file, value);
    } catch (err) {
      // The kernel's word on a value (EINVAL, ERANGE, EBUSY...) names the config field it came from.
      if (field && causeCode(err) !== 'ENOENT') throw (err as PocrunError).wrap(field);
      if (causeCode(err) !== 'ENOENT' || !isDir(dir)) throw err;
      const controller = file.split('.')[0]!;
      const available = words(readCgroupFile(dir, 'cgroup.controllers'));
      if (controller === 'cgroup' || available.includes(controller)) throw field ? (err as PocrunError).wrap(field) : err;
      const missing = writeError(
        path,
        file,
        value,
        (err as Error).cause,
        ` (the ${controller} controller is not enabled for this cgroup; its cgroup.controllers: ${available.join(' ') || 'none'})`,
      );
      throw field ? missing.wrap(field) : missing;
    }
  }

  create(path: string, resources: LinuxResources = {}): void {
    path = checkCgroupPath(path);
    this.check(path, resources, 'config.json');
    const created: string[] = [];
    try {
      let cur = this.fsRoot;
      for (const part of path.split('/').filter(Boolean)) {
        this.enableControllers(cur);
        const next = `${cur}/${part}`;
        try {
          created.push(...mkdirs(next, cur));
        } catch (err) {
          throw new PocrunError(`cgroup ${path}: mkdir ${next}: ${errnoText(err)}`, 1, { cause: err });
        }
        cur = next;
      }
      this.apply(path, resources);
    } catch (err) {
      undoMkdirs(created);
      throw err;
    }
  }

  /** Enables in `dir`'s subtree_control every controller `dir` has. Failures are left for the writes to report. */
  private enableControllers(dir: string): void {
    const enabled = new Set(words(readCgroupFile(dir, 'cgroup.subtree_control')));
    const missing = words(readCgroupFile(dir, 'cgroup.controllers')).filter((c) => !enabled.has(c));
    if (missing.length === 0) return;
    const write = (value: string) => writeCgroupFile(dir, dir, 'cgroup.subtree_control', value);
    try {
      write(missing.map((c) => `+${c}`).join(' '));
    } catch {
      for (const c of missing) {
        try {
          write(`+${c}`);
        } catch {
          // e.g. EBUSY: the parent has processes of its own ("no internal processes" rule)
        }
      }
    }
  }

  procsFiles(path: string): string[] {
    path = checkCgroupPath(path);
    return [`${this.dir(path)}/cgroup.procs`];
  }

  ownProcsFile(selfCgroup = readFileSync('/proc/self/cgroup', 'utf8')): string | undefined {
    const path = /^0::(.*)$/m.exec(selfCgroup)?.[1];
    return path === undefined ? undefined : `${this.fsRoot}${path === '/' ? '' : path}/cgroup.procs`;
  }

  /** Fails before any write on what cgroup v2 cannot do. */
  private check(path: string, r: LinuxResources, where: string): void {
    const fail = (what: string) => {
      throw new PocrunError(`cgroup ${path}: ${what}`);
    };
    /** A field that cgroup v2 cannot honour: named by its JSON pointer. */
    const refuse = (pointer: string, why: string) => {
      throw new PocrunError(`${where} ${RESOURCES}${pointer}: ${why} (cgroup ${path})`);
    };
    const m = r.memory;
    if (m) {
      try {
        memorySwapToV2(m.swap, m.limit);
      } catch (err) {
        throw (err as PocrunError).wrap(`${where} ${RESOURCES}/memory/swap`);
      }
      if (m.disableOOMKiller) refuse('/memory/disableOOMKiller', 'cgroup v2 has no way to disable the OOM killer');
      if (m.swappiness !== undefined && m.swappiness !== -1) refuse('/memory/swappiness', 'cgroup v2 has no per-cgroup swappiness');
      if (m.useHierarchy === false) refuse('/memory/useHierarchy', 'false is impossible: cgroup v2 is always hierarchical');
    }
    const c = r.cpu;
    if (c?.realtimeRuntime) refuse('/cpu/realtimeRuntime', 'realtime group scheduling has no cgroup v2 interface');
    if (c?.realtimePeriod) refuse('/cpu/realtimePeriod', 'realtime group scheduling has no cgroup v2 interface');
    if (c?.burst !== undefined && c.quota !== undefined && c.quota > 0 && c.burst > c.quota) {
      refuse('/cpu/burst', `${c.burst} is larger than /cpu/quota ${c.quota}`);
    }
    const b = r.blockIO;
    if (b?.leafWeight) refuse('/blockIO/leafWeight', 'cgroup v2 has no leaf weight');
    const leaf = b?.weightDevice?.findIndex((wd) => wd.leafWeight) ?? -1;
    if (leaf >= 0) refuse(`/blockIO/weightDevice/${leaf}/leafWeight`, 'cgroup v2 has no leaf weight');
    if (r.network?.classID !== undefined) refuse('/network/classID', 'the net_cls controller exists only on cgroup v1');
    if (r.network?.priorities?.length) refuse('/network/priorities', 'the net_prio controller exists only on cgroup v1');
    // cgroup v2 has no device files: the rules are an eBPF program (deviceFilter), which the helper attaches.
    if (r.devices) fail('linux.resources.devices: on cgroup v2 the device rules go through deviceFilter, not apply');
    for (const key of Object.keys(r.unified ?? {})) {
      if (!/^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(key)) refuse(`/unified/${pointerToken(key)}`, `${JSON.stringify(key)} is not a cgroup file name`);
    }
  }

  apply(path: string, r: LinuxResources, where = 'config.json'): void {
    path = checkCgroupPath(path);
    this.check(path, r, where);
    const dir = this.dir(path);
    /** Writes a value converted from the config field at `pointer` (below /linux/resources). */
    const write = (file: string, value: string, pointer: string) => this.write(path, file, value, `${where} ${RESOURCES}${pointer}`);

    if (r.pids?.limit !== undefined) {
      write('pids.max', r.pids.limit < 0 ? 'max' : intText(r.pids.limit, 'pids.limit'), '/pids/limit');
    }

    const m = r.memory;
    if (m) {
      const limit = v2Limit(m.limit, 'memory.limit');
      if (m.checkBeforeUpdate && m.limit !== undefined && m.limit > 0) {
        const usage = readNumber(dir, 'memory.current');
        if (m.limit < usage) {
          throw new PocrunError(`${where} ${RESOURCES}/memory/limit: ${m.limit} is below the current usage (${usage} bytes) and checkBeforeUpdate is set (cgroup ${path})`);
        }
      }
      const swap = memorySwapToV2(m.swap, m.limit);
      if (swap !== undefined) write('memory.swap.max', swap < 0 ? 'max' : intText(swap, 'memory.swap'), '/memory/swap');
      if (limit !== undefined) write('memory.max', limit, '/memory/limit');
      const low = v2Limit(m.reservation, 'memory.reservation');
      if (low !== undefined) write('memory.low', low, '/memory/reservation');
      // kernel and kernelTCP are ignored, as runc does on v2: cgroup v2 accounts kernel memory in memory.max.
      // memory.oom.group (kill the whole container on an OOM, not one process) has no config field: runc and
      // crun leave it to `unified`, and so does pocrun.
    }

    const b = r.blockIO;
    if (b) {
      // BFQ's io.bfq.weight takes the v1 range (1..1000) as it is; io.weight (1..10000) needs the conversion.
      const bfq = readCgroupFile(dir, 'io.bfq.weight') !== undefined;
      if (b.weight) {
        if (bfq) write('io.bfq.weight', intText(b.weight, 'blockIO.weight'), '/blockIO/weight');
        else write('io.weight', String(blkioWeightToIOWeight(b.weight)), '/blockIO/weight');
      }
      for (const [i, wd] of (b.weightDevice ?? []).entries()) {
        if (!wd.weight) continue;
        const dev = `${intText(wd.major, 'blockIO.weightDevice.major')}:${intText(wd.minor, 'blockIO.weightDevice.minor')}`;
        if (bfq) write('io.bfq.weight', `${dev} ${intText(wd.weight, 'blockIO.weightDevice.weight')}`, `/blockIO/weightDevice/${i}`);
        else write('io.weight', `${dev} ${blkioWeightToIOWeight(wd.weight)}`, `/blockIO/weightDevice/${i}`);
      }
      const throttles = [
        ['throttleReadBpsDevice', 'rbps'],
        ['throttleWriteBpsDevice', 'wbps'],
        ['throttleReadIOPSDevice', 'riops'],
        ['throttleWriteIOPSDevice', 'wiops'],
      ] as const;
      for (const [field, key] of throttles) {
        for (const [i, td] of (b[field] ?? []).entries()) {
          // On v1 a rate of 0 removes the limit; io.max says that with `max`.
          const rate = td.rate === 0 ? 'max' : intText(td.rate, `blockIO.${field}.rate`);
          const dev = `${intText(td.major, `blockIO.${field}.major`)}:${intText(td.minor, `blockIO.${field}.minor`)}`;
          write('io.max', `${dev} ${key}=${rate}`, `/blockIO/${field}/${i}`);
        }
      }
    }

    const c = r.cpu;
    if (c) {
      if (c.shares) write('cpu.weight', String(cpuSharesToWeight(c.shares)), '/cpu/shares');
      let burstPending = false;
      if (c.burst !== undefined) {
        try {
          write('cpu.max.burst', intText(c.burst, 'cpu.burst'), '/cpu/burst');
        } catch (err) {
          // A burst above the old quota is rejected; it is written again after the new quota.
          if (causeCode(err) !== 'EINVAL' || !c.quota) throw err;
          burstPending = true;
        }
      }
      const max = cpuMax(c.quota, c.period, words(readCgroupFile(dir, 'cpu.max'))[0] ?? 'max');
      if (max !== undefined) write('cpu.max', max, c.quota ? '/cpu/quota' : '/cpu/period');
      if (burstPending) write('cpu.max.burst', intText(c.burst!, 'cpu.burst'), '/cpu/burst');
      if (c.idle !== undefined) write('cpu.idle', intText(c.idle, 'cpu.idle'), '/cpu/idle');
      if (c.cpus) write('cpuset.cpus', c.cpus, '/cpu/cpus');
      if (c.mems) write('cpuset.mems', c.mems, '/cpu/mems');
    }

    let rsvd = true;
    for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
      const size = checkPageSize(h.pageSize);
      const value = intText(h.limit, 'hugepageLimits.limit');
      write(`hugetlb.${size}.max`, value, `/hugepageLimits/${i}`);
      // As runc: the reservation limit too, where the kernel has it (5.11+), so that a reservation cannot
      // outgrow the limit; all or none of the sizes get it.
      if (rsvd && readCgroupFile(dir, `hugetlb.${size}.rsvd.max`) !== undefined) write(`hugetlb.${size}.rsvd.max`, value, `/hugepageLimits/${i}`);
      else rsvd = false;
    }

    for (const [device, limits] of Object.entries(r.rdma ?? {})) {
      let line = device;
      if (limits.hcaHandles !== undefined) line += ` hca_handle=${intText(limits.hcaHandles, `rdma.${device}.hcaHandles`)}`;
      if (limits.hcaObjects !== undefined) line += ` hca_object=${intText(limits.hcaObjects, `rdma.${device}.hcaObjects`)}`;
      write('rdma.max', line, `/rdma/${pointerToken(device)}`);
    }

    // Last, so that an explicit unified value wins over a converted one.
    for (const [file, value] of Object.entries(r.unified ?? {})) write(file, value, `/unified/${pointerToken(file)}`);
  }

  deviceFilter(path: string, rules: readonly LinuxDeviceCgroup[]): DeviceFilter {
    path = checkCgroupPath(path);
    try {
      return { dir: this.dir(path), insns: deviceFilter(rules) };
    } catch (err) {
      throw (err as PocrunError).wrap(`cgroup ${path}`);
    }
  }

  pids(path: string): number[] {
    path = checkCgroupPath(path);
    return [...readPidsRecursive(this.dir(path))].sort((a, b) => a - b);
  }

  private waitFrozen(dir: string, frozen: boolean, timeoutMs: number): boolean {
    const want = frozen ? 1 : 0;
    let waited = 0;
    for (let i = 0; ; i++) {
      if ((readKeyed(dir, 'cgroup.events').frozen ?? 0) === want) return true;
      if (waited >= timeoutMs) return false;
      const delay = RETRY_DELAYS_MS[Math.min(i, RETRY_DELAYS_MS.length - 1)]!;
      sleepMs(delay);
      waited += delay;
    }
  }

  freeze(path: string): void {
    path = checkCgroupPath(path);
    const dir = this.dir(path);
    this.write(path, 'cgroup.freeze', '1');
    const timeout = this.options.freezeTimeoutMs ?? FREEZE_TIMEOUT_MS;
    if (this.waitFrozen(dir, true, timeout)) return;
    this.write(path, 'cgroup.freeze', '0');
    throw new PocrunError(`cgroup ${path}: not frozen after ${timeout} ms; thawed again`);
  }

  /** Nothing to do (no error) for a cgroup that does not exist or has no freezer, or that goes meanwhile. */
  thaw(path: string): void {
    path = checkCgroupPath(path);
    const dir = this.dir(path);
    if (!existsSync(`${dir}/cgroup.freeze`)) return;
    try {
      this.write(path, 'cgroup.freeze', '0');
    } catch (err) {
      // systemd removes an emptied scope itself: its cgroup can go between the check and the write.
      if (!existsSync(dir)) return;
      throw err;
    }
    this.waitFrozen(dir, false, 500);
  }

  state(path: string): FreezerState {
    path = checkCgroupPath(path);
    const dir = this.dir(path);
    // As runc (fs2 getFreezer): the cgroup's own cgroup.freeze says whether it was paused, cgroup.events whether
    // that is done; frozen only through an ancestor (frozen 1, cgroup.freeze 0) is not paused.
    if ((readCgroupFile(dir, 'cgroup.freeze') ?? '').trim() !== '1') return 'thawed';
    return readKeyed(dir, 'cgroup.events').frozen === 1 ? 'frozen' : 'freezing';
  }

  stats(path: string): CgroupStats {
    path = checkCgroupPath(path);
    const dir = this.dir(path);
    const s = emptyStats();

    const cpu = readKeyed(dir, 'cpu.stat');
    s.cpu.usage = {
      ...omitEmpty({ total: (cpu.usage_usec ?? 0) * 1000 }),
      kernel: (cpu.system_usec ?? 0) * 1000,
      user: (cpu.user_usec ?? 0) * 1000,
    };
    s.cpu.throttling = omitEmpty({
      periods: cpu.nr_periods,
      throttledPeriods: cpu.nr_throttled,
      throttledTime: (cpu.throttled_usec ?? 0) * 1000,
    });
    s.cpuset = {
      ...s.cpuset,
      ...omitEmpty({
        cpus: parseCpuList(readCgroupFile(dir, 'cpuset.cpus.effective') ?? ''),
        mems: parseCpuList(readCgroupFile(dir, 'cpuset.mems.effective') ?? ''),
      }),
    };

    if (readCgroupFile(dir, 'memory.current') !== undefined) {
      const raw = readKeyed(dir, 'memory.stat');
      const usage = memoryEntry(
        readNumber(dir, 'memory.max'),
        readNumber(dir, 'memory.current'),
        readNumber(dir, 'memory.peak'),
        readKeyed(dir, 'memory.events').max ?? 0,
      );
      // v1 reports swap as memory+swap; runc reports v2 the same way.
      let swap = memoryEntry(0, 0, 0, 0);
      if (readCgroupFile(dir, 'memory.swap.current') !== undefined) {
        const limit = readNumber(dir, 'memory.swap.max');
        swap = memoryEntry(
          limit === MAX_U64 ? limit : limit + usage.limit,
          readNumber(dir, 'memory.swap.current') + (usage.usage ?? 0),
          readNumber(dir, 'memory.swap.peak'),
          readKeyed(dir, 'memory.swap.events').max ?? 0,
        );
      }
      s.memory = {
        ...(raw.file ? { cache: raw.file } : {}),
        usage,
        swap,
        kernel: memoryEntry(0, 0, 0, 0),
        kernelTCP: memoryEntry(0, 0, 0, 0),
        ...(Object.keys(raw).length ? { raw } : {}),
      };
    }

    if (readCgroupFile(dir, 'pids.current') !== undefined) {
      s.pids = omitEmpty({ current: readNumber(dir, 'pids.current'), limit: readNumber(dir, 'pids.max') });
    }

    const io = readCgroupFile(dir, 'io.stat');
    if (io !== undefined) {
      const bytes: BlkioEntry[] = [];
      const ios: BlkioEntry[] = [];
      for (const line of io.split('\n')) {
        const [dev, ...pairs] = words(line);
        const mm = /^(\d+):(\d+)$/.exec(dev ?? '');
        if (!mm) continue;
        for (const pair of pairs) {
          const [key, value] = pair.split('=');
          const into = key === 'rbytes' || key === 'wbytes' ? bytes : key === 'rios' || key === 'wios' ? ios : undefined;
          if (!into) continue;
          const op = key!.startsWith('r') ? 'Read' : 'Write';
          into.push(omitEmpty({ major: Number(mm[1]), minor: Number(mm[2]), op, value: Number(value) }));
        }
      }
      s.blkio = omitEmpty({ ioServiceBytesRecursive: bytes, ioServicedRecursive: ios });
    }

    let files: string[] = [];
    try {
      files = readdirSync(dir);
    } catch {
      // a missing cgroup has no hugetlb stats
    }
    for (const f of files) {
      const mm = /^hugetlb\.([0-9]+[KMGTP]?B)\.current$/.exec(f);
      if (!mm) continue;
      const size = mm[1]!;
      s.hugetlb[size] = {
        ...omitEmpty({ usage: readNumber(dir, `hugetlb.${size}.current`) }),
        failcnt: readKeyed(dir, `hugetlb.${size}.events`).max ?? 0,
      };
    }
    return s;
  }

  killAll(path: string, signal: NodeJS.Signals | number = 'SIGKILL'): void {
    path = checkCgroupPath(path);
    const dir = this.dir(path);
    if (!isDir(dir)) return;
    const sigkill = signal === 'SIGKILL' || signal === 9;
    // cgroup.kill (Linux 5.14+) kills the whole subtree at once, racing with no fork.
    if (sigkill && existsSync(`${dir}/cgroup.kill`)) {
      try {
        this.write(path, 'cgroup.kill', '1');
      } catch (err) {
        // A cgroup being removed meanwhile (systemd removes an emptied scope itself) refuses the write with ENODEV
        // while its directory may still be seen: nothing is left in it to kill.
        if (causeCode(err) === 'ENODEV' || !existsSync(dir)) return;
        throw err;
      }
    } else {
      signalAllFrozen(this, path, signal, existsSync(`${dir}/cgroup.freeze`));
    }
    // As v1's (and runc's kill of a paused container): SIGKILL leaves the cgroup thawed. v2 lets a frozen task
    // die, but a cgroup left frozen would read "paused" (the status rule reads the freezer first).
    if (sigkill && this.state(path) !== 'thawed') this.thaw(path);
  }

  destroy(path: string): void {
    path = checkCgroupPath(path);
    removeCgroupTree(path, this.dir(path));
  }

  exists(path: string): boolean {
    path = checkCgroupPath(path);
    return isDir(this.dir(path));
  }

  dirs(path: string): Record<string, string> {
    return { unified: this.dir(checkCgroupPath(path)) };
  }
}
