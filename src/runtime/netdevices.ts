import { existsSync } from 'node:fs';
import { PocrunError } from '../errors.js';
import type { NetDeviceMove } from '../plan/netdevices.js';

interface Address {
  family: string;
  local: string;
  prefixlen: number;
  scope: string;
  broadcast?: string;
  dynamic?: boolean;
  nodad?: boolean;
}

/**
 * Moves host network devices into the container's network namespace (config-linux.md "Network Devices"), with
 * iproute2, while the container init waits at `sync netdevices`. The kernel drops a device's addresses when it
 * changes namespace: its permanent global ones are read first and added again inside, and the device is set up.
 * Nothing is moved back on failure or at delete: the namespace's end returns physical devices to the host and
 * destroys virtual ones, which is what the spec asks.
 */
export function moveNetDevices(pid: number, moves: readonly NetDeviceMove[]): void {
  // Loaded only here: node:child_process costs every pocrun process ~0.2 MB, and most configs move nothing.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const run = (argv: string[], what: string): string => {
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    if (r.error) throw new PocrunError(`${what}: cannot run ${argv[0]}: ${r.error.message}`);
    if (r.status !== 0) throw new PocrunError(`${what}: ${r.stderr.trim() || `${argv[0]} exited with ${r.status}`}`);
    return r.stdout;
  };
  const inside = (argv: string[]) => ['nsenter', `--net=/proc/${pid}/ns/net`, ...argv];
  const links = () => new Set((JSON.parse(run(inside(['ip', '-j', 'link', 'show']), 'list the container\'s network devices')) as { ifname: string }[]).map((l) => l.ifname));

  for (const { host, name, ref } of moves) {
    const what = `config.json ${ref}`;
    if (!existsSync(`/sys/class/net/${host}`)) throw new PocrunError(`${what}: there is no network device ${JSON.stringify(host)} on the host`);
    const shown = JSON.parse(run(['ip', '-j', 'addr', 'show', 'dev', host], `${what}: read the addresses of ${host}`)) as { addr_info?: Address[] }[];
    const permanent = (shown[0]?.addr_info ?? []).filter((a) => a.scope === 'global' && !a.dynamic);
    const before = links();
    run(['ip', 'link', 'set', 'dev', host, 'netns', String(pid), 'name', name], `${what}: move ${host} into the container as ${name}`);
    // With a "%d" template the kernel chose the name: the one device that was not there before.
    const [moved] = [...links()].filter((l) => !before.has(l));
    if (!moved) throw new PocrunError(`${what}: ${host} was moved but is not in the container's network namespace`);
    for (const a of permanent) {
      const address = [`${a.local}/${a.prefixlen}`, ...(a.broadcast ? ['brd', a.broadcast] : []), ...(a.nodad ? ['nodad'] : [])];
      run(inside(['ip', 'addr', 'add', ...address, 'dev', moved]), `${what}: add ${a.local}/${a.prefixlen} to ${moved}`);
    }
    run(inside(['ip', 'link', 'set', 'dev', moved, 'up']), `${what}: set ${moved} up`);
  }
}
