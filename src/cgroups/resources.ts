/**
 * `linux.resources` of config.json, as config-linux.md names its fields (camelCase, as in the JSON). Defined here
 * so that the cgroups layer does not depend on the generated spec types; those are structurally assignable to it.
 * Numbers are JSON numbers: int64 values above 2^53 lose precision when config.json is parsed, as with any JSON
 * reader in JavaScript; they are written back as integers (never in exponent form).
 */

export interface LinuxDeviceCgroup {
  allow: boolean;
  /** `a` (all), `c` or `b`; unset means `a`. */
  type?: string;
  /** Unset means `*`. */
  major?: number;
  minor?: number;
  /** A composition of `r`, `w` and `m`; unset means `rwm`. */
  access?: string;
}

export interface LinuxMemory {
  limit?: number;
  reservation?: number;
  /** memory + swap, as in cgroup v1. */
  swap?: number;
  /** Ignored: kernel memory limits are deprecated (and no-ops since Linux 5.16), as runc ignores them. */
  kernel?: number;
  kernelTCP?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  useHierarchy?: boolean;
  checkBeforeUpdate?: boolean;
}

export interface LinuxCPU {
  shares?: number;
  quota?: number;
  burst?: number;
  period?: number;
  realtimeRuntime?: number;
  realtimePeriod?: number;
  cpus?: string;
  mems?: string;
  idle?: number;
}

export interface LinuxPids {
  /** -1 (or any negative value) is `max`; 0 is a valid limit. */
  limit?: number;
}

export interface LinuxWeightDevice {
  major: number;
  minor: number;
  weight?: number;
  leafWeight?: number;
}

export interface LinuxThrottleDevice {
  major: number;
  minor: number;
  rate: number;
}

export interface LinuxBlockIO {
  weight?: number;
  leafWeight?: number;
  weightDevice?: LinuxWeightDevice[];
  throttleReadBpsDevice?: LinuxThrottleDevice[];
  throttleWriteBpsDevice?: LinuxThrottleDevice[];
  throttleReadIOPSDevice?: LinuxThrottleDevice[];
  throttleWriteIOPSDevice?: LinuxThrottleDevice[];
}

export interface LinuxHugepageLimit {
  /** `<size><unit-prefix>B`: 64KB, 2MB, 1GB. */
  pageSize: string;
  limit: number;
}

export interface LinuxInterfacePriority {
  name: string;
  priority: number;
}

export interface LinuxNetwork {
  classID?: number;
  priorities?: LinuxInterfacePriority[];
}

export interface LinuxRdma {
  hcaHandles?: number;
  hcaObjects?: number;
}

export interface LinuxResources {
  devices?: LinuxDeviceCgroup[];
  memory?: LinuxMemory;
  cpu?: LinuxCPU;
  pids?: LinuxPids;
  blockIO?: LinuxBlockIO;
  hugepageLimits?: LinuxHugepageLimit[];
  network?: LinuxNetwork;
  rdma?: Record<string, LinuxRdma>;
  /** cgroup v2 files, written as they are. */
  unified?: Record<string, string>;
}
