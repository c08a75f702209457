import { PocError } from '../errors.js';

/** config.json's namespace types and the names the helper and /proc/<pid>/ns use. */
export const NAMESPACE_NAMES: Record<string, string> = {
  pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup', time: 'time',
};

/** setns order matters: the user namespace first (it grants the rights to join the rest), mount last. */
export const JOIN_ORDER = ['user', 'ipc', 'uts', 'net', 'pid', 'cgroup', 'time', 'mnt'];

export function namespaceName(type: string, where: string): string {
  const name = NAMESPACE_NAMES[type];
  if (!name) throw new PocError(`${where}: unknown namespace type ${JSON.stringify(type)}`);
  return name;
}
