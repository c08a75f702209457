import type { Spec } from '../spec/generated/config.js';
import { ConfigFieldError } from '../errors.js';

/** A host network device to move into the container's network namespace, and its name there. */
export interface NetDeviceMove {
  host: string;
  /** May end in a `%d` template: the kernel then picks the number. */
  name: string;
  ref: string;
}

/** A Linux interface name: 1 to 15 bytes (IFNAMSIZ - 1), no "/", ":" or white space, not "." or "..". */
const IFNAME = /^[^/:\s]{1,15}$/;

function checkName(name: string, where: string): string {
  if (!IFNAME.test(name) || name === '.' || name === '..' || Buffer.byteLength(name) > 15) {
    throw new ConfigFieldError(where, `${JSON.stringify(name)} is not a network interface name (1 to 15 characters, no "/", ":" or spaces)`);
  }
  return name;
}

/**
 * linux.netDevices (config-linux.md "Network Devices"): checked here; the runtime moves them when the helper
 * asks at `sync netdevices`, once the container's network namespace exists.
 */
export function netDeviceMoves(netDevices: NonNullable<Spec['linux']>['netDevices'], hasNetNamespace: boolean): NetDeviceMove[] {
  const entries = Object.entries(netDevices ?? {});
  if (entries.length && !hasNetNamespace) {
    throw new ConfigFieldError('/linux/netDevices', 'moving network devices needs a network namespace in /linux/namespaces');
  }
  return entries.map(([host, device]) => {
    const ref = `/linux/netDevices/${host.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    checkName(host, ref);
    return { host, name: device?.name === undefined ? host : checkName(device.name, `${ref}/name`), ref };
  });
}
