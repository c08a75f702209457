import type { Step } from './wire.js';

import type { DeviceNode } from '../vocabulary/device-node.js';
import type { DeviceCgroup } from '../spec/generated/config.js';

export type { DeviceNode };

/** The devices config-linux.md says every container gets ("Default Devices"). */
export const DEFAULT_DEVICES: readonly Omit<DeviceNode, 'uid' | 'gid'>[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666 },
];

/** The links runc makes in /dev: the stdio names, /dev/fd and /dev/ptmx into the container's devpts. */
export const DEV_SYMLINKS: readonly [target: string, link: string][] = [
  ['/proc/self/fd', '/dev/fd'],
  ['/proc/self/fd/0', '/dev/stdin'],
  ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'],
  ['pts/ptmx', '/dev/ptmx'],
];

/** In a user namespace mknod is refused, so devices are bind mounts of the host's nodes. */
export function deviceSteps(devices: readonly DeviceNode[], inUserNamespace: boolean, ref: (i: number) => string): Step[] {
  return devices.map((d, i) =>
    inUserNamespace && d.type !== 'p'
      ? ['bind-dev', d.path, d.path, ref(i)]
      : ['mknod', d.path, d.type, String(d.major), String(d.minor), d.fileMode.toString(8), String(d.uid), String(d.gid), ref(i)],
  );
}

/**
 * What every container may use whatever its config says, appended after the config's own rules as runc does:
 * mknod of any node (the cgroup still guards reads and writes), the default devices, the pty devices.
 */
export const DEFAULT_DEVICE_RULES: readonly DeviceCgroup[] = [
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  ...DEFAULT_DEVICES.map((d) => ({ allow: true, type: 'c', major: d.major, minor: d.minor, access: 'rwm' })),
  { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' }, // /dev/console
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
  { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }, // /dev/net/tun
];

/**
 * cgroup v2's device filter (src/cgroups/device-filter.ts) as the helper's `device-filter` step: the cgroup
 * directory and the program as hex, since plan fields and argv hold no NUL. `pocrun-init --device-filter` (for
 * update) takes the same two fields.
 */
export function deviceFilterStep(filter: { dir: string; insns: Uint8Array }): Step {
  return ['device-filter', filter.dir, Buffer.from(filter.insns).toString('hex'), '/linux/resources/devices'];
}

/**
 * The device cgroup rules for a container: its config's rules, then the defaults every container gets, as runc
 * and crun append them. A node of linux.devices is only made: what it may do is what these rules say (runc 1.1
 * and crun 1.8 refuse to open one the rules do not allow), so an engine's `--device HOST:CTR:r` holds.
 */
export function deviceCgroupRules(configRules: readonly DeviceCgroup[] | undefined): DeviceCgroup[] {
  return [...(configRules ?? []), ...DEFAULT_DEVICE_RULES];
}
