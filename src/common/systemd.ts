import { statSync } from 'node:fs';

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
