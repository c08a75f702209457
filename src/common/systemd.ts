import { statSync } from 'node:fs';

/** systemd is the init (sd_booted(3): /run/systemd/system is a directory), so it has a manager to ask. */
export function systemdRunning(runDir = '/run/systemd/system'): boolean {
  try {
    return statSync(runDir).isDirectory();
  } catch {
    return false;
  }
}
