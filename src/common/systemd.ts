import { existsSync, statSync } from 'node:fs';

/** systemd is the init (sd_booted(3): /run/systemd/system is a directory), so it has a manager to ask. */
export function systemdRunning(runDir = '/run/systemd/system'): boolean {
  try {
    return statSync(runDir).isDirectory();
  } catch {
    return false;
  }
}

/**
 * The cgroup of the systemd instance a scope is asked of: the system manager's is the hierarchy's root; an
 * unprivileged user's own (`systemd --user`) is the one logind starts for it, user@UID.service in user-UID.slice,
 * whose subtree is delegated to the user. (pocrun's systemd driver and rootless poc's delegation check.)
 */
export function managerCgroup(uid: number | undefined): string {
  return uid === undefined ? '' : `/user.slice/user-${uid}.slice/user@${uid}.service`;
}

/**
 * Why an unprivileged user's own systemd (`systemd --user`) cannot be asked on its bus, or undefined where its bus
 * is there. The rule of rootless podman (containers/common's CheckCgroupsAndAdjustConfig), which then falls back to
 * cgroupfs: $DBUS_SESSION_BUS_ADDRESS (empty is unset) names the bus, and one that names only unix:path= sockets is
 * there when one of them exists (another transport is taken on trust); without it, $XDG_RUNTIME_DIR/bus (what
 * sd_bus_open_user(3) connects to). One rule for poc's delegation check and pocrun's --systemd-cgroup, so that an
 * address naming no bus is refused before anything asks it, in one line, not by a failed D-Bus call mid-create.
 */
export function userBusProblem(env: NodeJS.ProcessEnv, exists: (path: string) => boolean = (p) => existsSync(p)): string | undefined {
  const address = env.DBUS_SESSION_BUS_ADDRESS;
  if (address) {
    const paths: string[] = [];
    for (const one of address.split(';').filter(Boolean)) {
      const escaped = /^unix:(?:.*,)?path=([^,]+)/.exec(one)?.[1];
      if (escaped === undefined) return undefined;
      const path = unescapeValue(escaped);
      if (exists(path)) return undefined;
      paths.push(path);
    }
    return paths.length > 0 ? `DBUS_SESSION_BUS_ADDRESS names ${paths.join(', ')}, ${paths.length > 1 ? 'none of which exists' : 'which does not exist'}` : undefined;
  }
  const runtimeDir = env.XDG_RUNTIME_DIR;
  if (!runtimeDir) return 'XDG_RUNTIME_DIR is not set';
  return exists(`${runtimeDir}/bus`) ? undefined : `no ${runtimeDir}/bus`;
}

/** A D-Bus address value, whose bytes may be %-escaped (the D-Bus specification's "Server Addresses"). */
function unescapeValue(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
