/**
 * `-p [[IP:][HOST]:]CONTAINER[/tcp|/udp]` (pure), as docker reads it: HOST and CONTAINER may be equal-length
 * ranges (`8000-8001:80-81`: one mapping per port), and a missing HOST (`-p 80`, `-p 127.0.0.1::80`) is an
 * ephemeral port, which poc picks when it reserves the container's ports (pickHostPorts).
 */
import { PocError } from '../errors.js';
import { isIpv4 } from './address.js';

export type Protocol = 'tcp' | 'udp';

export interface PortMapping {
  /** Omitted: every address of the host. */
  hostIp?: string;
  /** EPHEMERAL until poc has picked one (then the record keeps the picked port, as podman's does). */
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
}

/** hostPort of a mapping whose host port poc picks. */
export const EPHEMERAL = 0;

/** Where docker picks an ephemeral port when the kernel's ip_local_port_range cannot be read. */
export const DEFAULT_EPHEMERAL_RANGE: [number, number] = [49153, 65535];

/** `N` or `N-M` → [N, M]. */
function portRange(text: string, which: string, spec: string): [number, number] {
  const bad = (why: string) => new PocError(`invalid port mapping ${JSON.stringify(spec)}: ${why}`);
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) throw bad(`${which} port ${JSON.stringify(text)} is not a number or a range N-M`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  for (const n of [lo, hi]) if (n < 1 || n > 65535) throw bad(`${which} port ${n} is out of range 1-65535`);
  if (hi < lo) throw bad(`${which} port range ${text} ends before it starts`);
  return [lo, hi];
}

export function parsePublish(spec: string): PortMapping[] {
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
  // docker's bracketed IPv6 host address: named as such (poc publishes on IPv4 only), not a confusing split.
  const v6 = /^\[([^\]]*)\]:/.exec(rest);
  if (v6) throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: host address ${JSON.stringify(v6[1])} is not an IPv4 address (poc publishes ports on IPv4)`);
  const parts = rest.split(':');
  let hostIp: string | undefined;
  let hostPort = '';
  let ctrPort: string;
  if (parts.length === 1) {
    [ctrPort] = parts as [string];
  } else if (parts.length === 2) {
    [hostPort, ctrPort] = parts as [string, string];
  } else if (parts.length === 3) {
    [hostIp, hostPort, ctrPort] = parts as [string, string, string];
    if (hostIp === '' || hostIp === '0.0.0.0') hostIp = undefined;
    else if (!isIpv4(hostIp)) throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: host address ${JSON.stringify(hostIp)} is not an IPv4 address`);
  } else {
    throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: expected [[IP:][HOST_PORT]:]CONTAINER_PORT[/tcp|/udp]`);
  }
  const [clo, chi] = portRange(ctrPort, 'container', spec);
  const count = chi - clo + 1;
  let hlo = EPHEMERAL;
  if (hostPort !== '') {
    const [lo, hi] = portRange(hostPort, 'host', spec);
    // Docker would pick one port of a longer host range for a single container port; poc does not.
    if (hi - lo + 1 !== count) {
      throw new PocError(`invalid port mapping ${JSON.stringify(spec)}: the host range ${hostPort} has ${hi - lo + 1} port(s) and the container range ${ctrPort} ${count}: they must be the same length`);
    }
    hlo = lo;
  }
  return Array.from({ length: count }, (_, i) => ({
    ...(hostIp ? { hostIp } : {}),
    hostPort: hlo === EPHEMERAL ? EPHEMERAL : hlo + i,
    containerPort: clo + i,
    protocol,
  }));
}

export function formatPublish(p: PortMapping): string {
  const host = p.hostPort === EPHEMERAL ? '' : String(p.hostPort);
  return `${p.hostIp ? `${p.hostIp}:` : ''}${p.hostIp || host ? `${host}:` : ''}${p.containerPort}/${p.protocol}`;
}

/** `/proc/sys/net/ipv4/ip_local_port_range` ("32768\t60999") → the range docker picks ephemeral ports from. */
export function parsePortRange(text: string | undefined): [number, number] {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text ?? '');
  const lo = Number(m?.[1]);
  const hi = Number(m?.[2]);
  return m && lo >= 1 && hi <= 65535 && lo <= hi ? [lo, hi] : DEFAULT_EPHEMERAL_RANGE;
}

/** The local ports of the sockets in a /proc/net/{tcp,tcp6,udp,udp6} table (bound or listening on the host). */
export function parseProcNetPorts(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n').slice(1)) {
    const local = line.trim().split(/\s+/)[1];
    const port = local?.split(':')[1];
    if (port) out.push(parseInt(port, 16));
  }
  return out;
}

/**
 * "PORT/PROTOCOL" of the elements of poc's nftables `ports` map (`nft list map ip poc ports`): the ports every poc
 * root on this host publishes, which one root's records alone do not show.
 */
export function parseNftPortsMap(text: string): string[] {
  return [...text.matchAll(/\b(tcp|udp) \. (\d+) :/g)].map((m) => `${m[2]}/${m[1]}`);
}

export interface HostPortFacts {
  /** The ephemeral range (parsePortRange). */
  range: [number, number];
  /** "PORT/PROTOCOL" of every port already taken: by the host's sockets and by other containers. */
  taken: Set<string>;
}

/**
 * Pure: every EPHEMERAL host port replaced by a free one of the range, the lowest first (two ports of one
 * container differ). A port given explicitly is left as it is (clashes are checked elsewhere).
 */
export function pickHostPorts(publish: PortMapping[], facts: HostPortFacts): PortMapping[] {
  const taken = new Set(facts.taken);
  for (const p of publish) if (p.hostPort !== EPHEMERAL) taken.add(`${p.hostPort}/${p.protocol}`);
  return publish.map((p) => {
    if (p.hostPort !== EPHEMERAL) return p;
    for (let port = facts.range[0]; port <= facts.range[1]; port++) {
      if (taken.has(`${port}/${p.protocol}`)) continue;
      taken.add(`${port}/${p.protocol}`);
      return { ...p, hostPort: port };
    }
    throw new PocError(`no free host port for ${formatPublish(p)}: every port of ${facts.range[0]}-${facts.range[1]}/${p.protocol} is in use`);
  });
}
