import { readFileSync } from 'node:fs';
import { PocrunError, wrapError } from '../errors.js';
import { ramInBytes } from '../common/size.js';
import type { CgroupDriver, LinuxResources } from '../cgroups/index.js';
import { deviceCgroupRules } from '../plan/devices.js';
import { SystemdCgroupDriver } from '../cgroups/systemd.js';
import { runDeviceFilter } from './init-helper.js';
import type { ContainerRecord } from './state-store.js';
import { validate_config } from '../spec/generated/validators.js';
import { describeValidationError, parseUserJson } from '../spec/validate.js';
import { NOT_RUNNING, withLockedContainer } from './status.js';
import type { RuntimeContext } from './context.js';

/** runc's update flags, as given on the command line (strings: they are parsed here, with runc's rules). */
export interface UpdateFlags {
  resources?: string;
  memory?: string;
  'memory-swap'?: string;
  'memory-reservation'?: string;
  'kernel-memory'?: string;
  'kernel-memory-tcp'?: string;
  'cpu-shares'?: string;
  'cpu-quota'?: string;
  'cpu-period'?: string;
  'cpu-burst'?: string;
  'cpu-rt-period'?: string;
  'cpu-rt-runtime'?: string;
  'cpuset-cpus'?: string;
  'cpuset-mems'?: string;
  'pids-limit'?: string;
  'blkio-weight'?: string;
  'cpu-idle'?: string;
}

/**
 * pocrun update: applies new resource limits to a container's cgroup. Only the values given are written; as in
 * runc, 0 means "leave as it is" and -1 "unlimited" for the memory and pids limits.
 */
export function updateContainer(ctx: RuntimeContext, id: string, flags: UpdateFlags, readStdin: () => Buffer = () => readFileSync(0)): void {
  const resources = flags.resources !== undefined ? readResources(flags.resources, readStdin) : resourcesFromFlags(flags);
  withLockedContainer(ctx, id, (record, status) => {
    if (status === 'stopped' || status === 'creating') throw new PocrunError(`cannot update container "${id}": ${NOT_RUNNING} (it is ${status})`);
    const where = flags.resources !== undefined ? `update --resources ${flags.resources}` : 'update';
    const cgroups = ctx.cgroupsOf(record);
    cgroups.apply(record.cgroupPath, replaceDevices(cgroups, record, resources), where);
  });
}

/**
 * New device rules replace the container's whole list, as crun's update does: with the devices every container
 * gets after them, as at create. On v2 the helper attaches them as a device filter
 * here, and the rest goes to apply.
 */
function replaceDevices(cgroups: CgroupDriver, record: ContainerRecord, resources: LinuxResources): LinuxResources {
  if (!resources.devices) return resources;
  const rules = deviceCgroupRules(resources.devices);
  const filter = cgroups.deviceFilter(record.cgroupPath, rules);
  if (!filter) return { ...resources, devices: rules };
  runDeviceFilter(filter);
  // The systemd driver gives systemd the rules as well (DevicePolicy, DeviceAllow), and writes no device file.
  return { ...resources, devices: cgroups instanceof SystemdCgroupDriver ? rules : undefined };
}

/** `--resources FILE` (or `-`, stdin): linux.resources of config.json, checked against the schema. */
export function readResources(file: string, readStdin: () => Buffer): LinuxResources {
  const where = file === '-' ? 'update --resources (stdin)' : `update --resources ${file}`;
  let text: string;
  try {
    text = (file === '-' ? readStdin() : readFileSync(file)).toString('utf8');
  } catch (err) {
    throw wrapError(where, err);
  }
  return checkResources(parseUserJson(text, where), where);
}

/** Validated as the `linux.resources` of a config; errors point into the resources document. */
export function checkResources(doc: unknown, where: string): LinuxResources {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new PocrunError(`${where}: must be a JSON object`);
  if (!validate_config({ ociVersion: '1.0.0', linux: { resources: doc } })) {
    const rest = describeValidationError(validate_config.errors ?? []).replace(/^\/linux\/resources/, '');
    throw new PocrunError(`${where}: ${rest.startsWith(': ') ? rest.slice(2) : rest}`);
  }
  return withoutZeros(doc as LinuxResources);
}

/** runc's update treats 0 as "not given" for every number; the drivers would write it. */
function withoutZeros(r: LinuxResources): LinuxResources {
  const out: LinuxResources = { ...r };
  if (r.memory) out.memory = dropZero({ ...r.memory }, ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP']);
  if (r.cpu) out.cpu = dropZero({ ...r.cpu }, ['shares', 'quota', 'period', 'realtimeRuntime', 'realtimePeriod']);
  if (r.pids) out.pids = dropZero({ ...r.pids }, ['limit']);
  if (r.blockIO) out.blockIO = dropZero({ ...r.blockIO }, ['weight', 'leafWeight']);
  return out;
}

function dropZero<T extends object>(obj: T, keys: (keyof T)[]): T {
  for (const k of keys) if (obj[k] === 0) delete obj[k];
  return obj;
}

/** Resources from runc's flags. */
export function resourcesFromFlags(f: UpdateFlags): LinuxResources {
  const r: LinuxResources = {};
  const memory: NonNullable<LinuxResources['memory']> = {};
  const cpu: NonNullable<LinuxResources['cpu']> = {};
  const size = (name: keyof UpdateFlags) => {
    const v = f[name];
    return v === undefined || v === '' ? undefined : v.trim() === '-1' ? -1 : parseBytes(v, `--${name}`);
  };
  const set = <T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined) => {
    if (value !== undefined && value !== 0) obj[key] = value;
  };
  set(memory, 'limit', size('memory'));
  set(memory, 'swap', size('memory-swap'));
  set(memory, 'reservation', size('memory-reservation'));
  set(memory, 'kernel', size('kernel-memory'));
  set(memory, 'kernelTCP', size('kernel-memory-tcp'));
  set(cpu, 'shares', uint(f['cpu-shares'], '--cpu-shares'));
  set(cpu, 'period', uint(f['cpu-period'], '--cpu-period'));
  set(cpu, 'realtimePeriod', uint(f['cpu-rt-period'], '--cpu-rt-period'));
  set(cpu, 'quota', int(f['cpu-quota'], '--cpu-quota'));
  set(cpu, 'burst', uint(f['cpu-burst'], '--cpu-burst'));
  set(cpu, 'realtimeRuntime', int(f['cpu-rt-runtime'], '--cpu-rt-runtime'));
  if (f['cpu-idle'] !== undefined && f['cpu-idle'] !== '') cpu.idle = int(f['cpu-idle'], '--cpu-idle');
  if (f['cpuset-cpus']) cpu.cpus = f['cpuset-cpus'];
  if (f['cpuset-mems']) cpu.mems = f['cpuset-mems'];
  if (Object.keys(memory).length) r.memory = memory;
  if (Object.keys(cpu).length) r.cpu = cpu;
  const pids = int(f['pids-limit'], '--pids-limit');
  if (pids !== undefined && pids !== 0) r.pids = { limit: pids };
  const weight = uint(f['blkio-weight'], '--blkio-weight');
  if (weight !== undefined && weight !== 0) {
    if (weight < 10 || weight > 1000) throw new PocrunError(`--blkio-weight: ${weight} is not in 10..1000`);
    r.blockIO = { weight };
  }
  return r;
}

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new PocrunError(`invalid value for ${flag}: ${JSON.stringify(v)} is not an integer`);
  return Number(v.trim());
}

function uint(v: string | undefined, flag: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v.trim())) throw new PocrunError(`invalid value for ${flag}: ${JSON.stringify(v)} is not a non-negative integer`);
  return Number(v.trim());
}

/** docker/go-units' RAMInBytes (common/size.ts), which runc uses; the error names the flag. */
export function parseBytes(text: string, flag: string): number {
  const bytes = ramInBytes(text);
  if (bytes === undefined) throw new PocrunError(`invalid value for ${flag}: invalid size: ${JSON.stringify(text)}`);
  return bytes;
}
