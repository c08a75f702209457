/**
 * Where the host's cgroup hierarchies are mounted (pure parsing of /proc/self/mountinfo, and the one read of it):
 * pocrun's drivers are built on it (src/cgroups/index.ts, detectCgroups), and rootless poc asks it which
 * directories a --cgroup-parent must be delegated in, as pocrun will make the container's cgroup in each.
 */
import { existsSync, readFileSync } from 'node:fs';

export interface CgroupMount {
  root: string;
  mountpoint: string;
  fstype: string;
  superOptions: string[];
}

const unescapeMount = (s: string) => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/** The cgroup and cgroup2 mounts listed in /proc/self/mountinfo. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (sep < 0) continue;
    const fstype = f[sep + 1];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    out.push({
      root: unescapeMount(f[3]!),
      mountpoint: unescapeMount(f[4]!),
      fstype,
      superOptions: (f[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

/** The v1 controllers a container's cgroup is made in (named hierarchies such as name=systemd are left alone). */
export const V1_CONTROLLERS = [
  'cpuset', 'devices', 'memory', 'cpu', 'cpuacct', 'pids', 'blkio', 'hugetlb',
  'net_cls', 'net_prio', 'perf_event', 'freezer', 'rdma', 'misc',
] as const;

/** controller → mount point of the v1 hierarchies, preferring mounts under `fsRoot`. */
export function v1MountsFrom(mounts: readonly CgroupMount[], fsRoot: string): Record<string, string> {
  const out: Record<string, string> = {};
  const known = new Set<string>(V1_CONTROLLERS);
  const v1 = mounts.filter((m) => m.fstype === 'cgroup');
  const under = (m: CgroupMount) => m.mountpoint.startsWith(fsRoot + '/');
  for (const m of [...v1.filter(under), ...v1.filter((x) => !under(x))]) {
    for (const opt of m.superOptions) if (known.has(opt) && !(opt in out)) out[opt] = m.mountpoint;
  }
  return out;
}

/**
 * The host's hierarchies: v2 when `fsRoot` itself is a cgroup2 hierarchy (it has cgroup.controllers), else v1 with
 * each controller's mount point (possibly none).
 */
export function cgroupHierarchies(
  fsRoot = '/sys/fs/cgroup',
  mountinfoFile = '/proc/self/mountinfo',
): { version: 2; root: string } | { version: 1; root: string; mounts: Record<string, string> } {
  const root = fsRoot.replace(/\/+$/, '') || '/';
  if (existsSync(`${root}/cgroup.controllers`)) return { version: 2, root };
  return { version: 1, root, mounts: v1MountsFrom(parseCgroupMounts(readFileSync(mountinfoFile, 'utf8')), root) };
}

/** The directories of a cgroup path in every hierarchy a container's cgroup is made in (one on v2). */
export function cgroupDirsOf(path: string, fsRoot?: string, mountinfoFile?: string): string[] {
  const h = cgroupHierarchies(fsRoot, mountinfoFile);
  return h.version === 2 ? [`${h.root}${path}`] : [...new Set(Object.values(h.mounts))].map((m) => `${m}${path}`);
}
