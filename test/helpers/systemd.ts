/** systemd as the guest tests ask it: systemctl's output, and a unit's properties. */
import { spawnSync } from 'node:child_process';

export function systemctl(...args: string[]): string {
  return spawnSync('systemctl', ['--no-pager', ...args], { encoding: 'utf8' }).stdout;
}

/** `systemctl show UNIT -p A -p B`, as an object. */
export function show(unit: string, ...props: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of systemctl('show', unit, ...props.flatMap((p) => ['-p', p])).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** The loaded units (active, failed or anything else) whose names start with one of `prefixes`. */
export function unitsNamed(...prefixes: string[]): string[] {
  return systemctl('list-units', '--all', '--plain', '--no-legend')
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0]!)
    .filter((u) => prefixes.some((p) => u.startsWith(p)));
}
