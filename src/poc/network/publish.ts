/** `-p [IP:]HOST:CONTAINER[/tcp|/udp]` (pure). */
import { PocError } from '../errors.js';
import { isIpv4 } from './address.js';

export type Protocol = 'tcp' | 'udp';

export interface PortMapping {
  /** Omitted: every address of the host. */
  hostIp?: string;
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
}

function port(text: string, which: string, spec: string): number {
  if (!/^\d+$/.test(text)) {
    if (/^\d+-\d+$/.test(text)) throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: port ranges are not supported`);
    throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: ${which} port ${JSON.stringify(text)} is not a number`);
  }
  const n = Number(text);
  if (n < 1 || n > 65535) throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: ${which} port ${n} is out of range 1-65535`);
  return n;
}

export function parsePublish(spec: string): PortMapping {
  let rest = spec.trim();
  let protocol: Protocol = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash !== -1) {
    const proto = rest.slice(slash + 1).toLowerCase();
    if (proto !== 'tcp' && proto !== 'udp') {
      throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: protocol ${JSON.stringify(proto)} is not tcp or udp`);
    }
    protocol = proto;
    rest = rest.slice(0, slash);
  }
  const parts = rest.split(':');
  let hostIp: string | undefined;
  let hostPort: string;
  let ctrPort: string;
  if (parts.length === 2) {
    [hostPort, ctrPort] = parts as [string, string];
  } else if (parts.length === 3) {
    [hostIp, hostPort, ctrPort] = parts as [string, string, string];
    if (hostIp === '' || hostIp === '0.0.0.0') hostIp = undefined;
    else if (!isIpv4(hostIp)) throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: host address ${JSON.stringify(hostIp)} is not an IPv4 address`);
  } else {
    throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: expected [IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp]`);
  }
  if (hostPort === '') throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: the host port is missing`);
  return {
    ...(hostIp ? { hostIp } : {}),
    hostPort: port(hostPort, 'host', spec),
    containerPort: port(ctrPort, 'container', spec),
    protocol,
  };
}

export function formatPublish(p: PortMapping): string {
  return `${p.hostIp ? `${p.hostIp}:` : ''}${p.hostPort}:${p.containerPort}/${p.protocol}`;
}
