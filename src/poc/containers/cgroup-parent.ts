/**
 * The one rule for a cgroupfs --cgroup-parent, root's (containers/options.ts) and a rootless user's (rootless.ts),
 * in a module of its own: rootless.ts is imported by options.ts, so it cannot import this from there.
 */
/** A cgroupfs --cgroup-parent in its normal form (`/a//./b/` is /a/b), or undefined if it is not absolute, is the root or climbs with `..`. */
export function cgroupfsParent(path: string): string | undefined {
  const parts = path.split('/').filter((x) => x !== '' && x !== '.');
  if (!path.startsWith('/') || parts.length === 0 || parts.includes('..')) return undefined;
  return `/${parts.join('/')}`;
}
