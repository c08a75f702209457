/** IPv4 addresses and subnets as numbers (pure). */
import { PocError } from '../errors.js';

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function isIpv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => OCTET.test(p));
}

export function ipToInt(ip: string): number {
  if (!isIpv4(ip)) throw new PocError(`invalid IPv4 address ${JSON.stringify(ip)}`);
  return ip.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Subnet {
  /** "10.89.0.0/16" */
  cidr: string;
  network: number;
  prefix: number;
  /** The first and last usable host addresses (network and broadcast excluded). */
  first: number;
  last: number;
  broadcast: number;
}

/** "10.89.0.0/16"; host bits must be zero; /8 to /30. */
export function parseSubnet(cidr: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
  if (!m || !isIpv4(m[1]!)) throw new PocError(`invalid subnet ${JSON.stringify(cidr)}: expected A.B.C.D/PREFIX`);
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) throw new PocError(`invalid subnet ${JSON.stringify(cidr)}: prefix must be between /8 and /30`);
  const size = 2 ** (32 - prefix);
  const addr = ipToInt(m[1]!);
  const network = addr - (addr % size);
  if (network !== addr) throw new PocError(`invalid subnet ${JSON.stringify(cidr)}: host bits set (did you mean ${intToIp(network)}/${prefix}?)`);
  return { cidr, network, prefix, first: network + 1, last: network + size - 2, broadcast: network + size - 1 };
}

export function inSubnet(subnet: Subnet, ip: string): boolean {
  const n = ipToInt(ip);
  return n >= subnet.network && n <= subnet.broadcast;
}

export function isLoopback(ip: string): boolean {
  return (isIpv4(ip) && ip.startsWith('127.')) || ip === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(ip);
}

/** Whether two IPv4 subnets share an address. */
export function subnetsOverlap(a: Subnet, b: Subnet): boolean {
  return a.network <= b.broadcast && b.network <= a.broadcast;
}

// IPv6, as BigInt: only what dual-stack networks need (a subnet, an address in it by offset, overlap).

export interface Subnet6 {
  /** As written back in canonical form: "fd00:1::/64". */
  cidr: string;
  network: bigint;
  prefix: number;
}

const MASK128 = (1n << 128n) - 1n;

/** "fd00::1" → 128-bit number; null when not an IPv6 address (no zone ids, no embedded IPv4). */
export function ip6ToBig(text: string): bigint | null {
  if (!/^[0-9a-fA-F:]+$/.test(text) || text.includes(':::')) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? head.length !== 8 : missing < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let n = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    n = (n << 16n) | BigInt(parseInt(g, 16));
  }
  return n;
}

export function isIpv6(text: string): boolean {
  return ip6ToBig(text) !== null;
}

/** 128-bit number → RFC 5952 text (lower case, the longest run of zero groups as "::"). */
export function bigToIp6(n: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** "fd00:1::/64"; host bits must be zero; /48 to /120 (room for a network's containers, not the whole space). */
export function parseSubnet6(cidr: string): Subnet6 {
  const m = /^([0-9a-fA-F:]+)\/(\d{1,3})$/.exec(cidr);
  const addr = m ? ip6ToBig(m[1]!) : null;
  if (!m || addr === null) throw new PocError(`invalid IPv6 subnet ${JSON.stringify(cidr)}: expected an address/PREFIX such as fd00:1::/64`);
  const prefix = Number(m[2]);
  if (prefix < 48 || prefix > 120) throw new PocError(`invalid IPv6 subnet ${JSON.stringify(cidr)}: prefix must be between /48 and /120`);
  const hostMask = (1n << BigInt(128 - prefix)) - 1n;
  if ((addr & hostMask) !== 0n) {
    throw new PocError(`invalid IPv6 subnet ${JSON.stringify(cidr)}: host bits set (did you mean ${bigToIp6(addr & ~hostMask & MASK128)}/${prefix}?)`);
  }
  return { cidr: `${bigToIp6(addr)}/${prefix}`, network: addr, prefix };
}

export function subnets6Overlap(a: Subnet6, b: Subnet6): boolean {
  const p = BigInt(128 - Math.min(a.prefix, b.prefix));
  return a.network >> p === b.network >> p;
}

/** The address at `offset` in the subnet (the IPv4 address's offset in its own subnet: one numbering for both). */
export function ip6At(s: Subnet6, offset: number): string {
  return bigToIp6(s.network + BigInt(offset));
}

export function inSubnet6(s: Subnet6, ip: string): boolean {
  const n = ip6ToBig(ip);
  return n !== null && n >> BigInt(128 - s.prefix) === s.network >> BigInt(128 - s.prefix);
}
