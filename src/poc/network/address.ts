/** IPv4 addresses and subnets as numbers (pure). */
import { PocError } from '../../errors.js';

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
