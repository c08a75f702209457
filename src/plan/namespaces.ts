import { ConfigFieldError } from '../errors.js';

/** config.json's namespace types and the names the helper and /proc/<pid>/ns use. */
export const NAMESPACE_NAMES: Record<string, string> = {
  pid: 'pid', network: 'net', mount: 'mnt', ipc: 'ipc', uts: 'uts', user: 'user', cgroup: 'cgroup', time: 'time',
};

/**
 * setns order matters. The runtime is root in the initial user namespace, which lets it join any namespace; once
 * in another user namespace it only has rights over what that one owns. A container's time namespace is made in
 * the helper's parent stage, before clone makes its user namespace, so the host's user namespace owns it: so
 * every namespace but mnt is joined first, then user (and the helper becomes its root), then mnt last (its path
 * and everything after it resolve in the container's root).
 */
export const JOIN_ORDER = ['ipc', 'uts', 'net', 'pid', 'cgroup', 'time', 'user', 'mnt'];

export function namespaceName(type: string, pointer: string): string {
  const name = NAMESPACE_NAMES[type];
  if (!name) throw new ConfigFieldError(pointer, `unknown namespace type ${JSON.stringify(type)}`);
  return name;
}

/** uid_map / gid_map text ("ID-inside ID-outside length" lines) for a user namespace's or an id-mapped mount's mappings. */
export function idMapText(maps: readonly { containerID: number; hostID: number; size: number }[] = []): string {
  return maps.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

/**
 * Whether the helper makes the container's user namespace itself before its sealed re-exec (`--new-userns`, see
 * PROTOCOL.md), rather than `clone` making it: for a runtime that is not root (it lacks CAP_SYS_PTRACE over a
 * helper whose memory belongs to the host's user namespace, so it could not open the waiting init's namespace
 * files), when the config makes a new user namespace and joins no namespace (joined ones may be owned by
 * another user namespace of the user's, which only the host's namespace may enter).
 */
export function userNamespaceFirst(namespaces: readonly { type: string; path?: string }[] | undefined, runtimeIsRoot: boolean): boolean {
  const list = namespaces ?? [];
  return !runtimeIsRoot && list.some((ns) => ns.type === 'user' && !ns.path) && !list.some((ns) => ns.path);
}
