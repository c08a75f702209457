import type { Step } from './wire.js';

export interface DeviceNode {
  path: string;
  type: string;
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

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
