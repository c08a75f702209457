/**
 * The network flags of `poc run` / `poc create` → checked settings (pure): `--network` (repeatable: bridge,
 * none, host or user networks), `--network-alias`, `--ip`, `--dns`, `--add-host`. Whether a named network
 * exists is checked when the container's address is reserved. Imports nothing heavy: every `poc run` loads it.
 */
import { PocError } from '../errors.js';
import { isIpv4, isIpv6 } from './address.js';
import type { NetworkMode } from './etc-files.js';

/** The name `--network` gives the default network, as docker's. */
export const DEFAULT_NETWORK = 'bridge';

/** Checks a --network-alias (a DNS label or dotted name). */
export function checkAlias(alias: string): void {
  if (!/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62})$/.test(alias)) throw new PocError(`invalid --network-alias ${JSON.stringify(alias)}: letters, digits and _.-, at most 63`);
}

/** The network flags as the command line gives them: --network (repeatable), --network-alias, --ip, --dns, --add-host. */
export interface NetworkFlags {
  network: string[];
  networkAliases: string[];
  ip?: string;
  dns: string[];
  addHosts: string[];
}

/** A network a container joins at create: the default ("bridge") or a user network, with its aliases and address. */
export interface NetworkAttachmentOptions {
  network: string;
  aliases?: string[];
  ip?: string;
}

/** `--add-host NAME:IP`; IP "host-gateway" is the gateway of the container's first network. */
export interface ExtraHost {
  ip: string;
  names: string[];
}

export interface NetworkSettings {
  network: NetworkMode;
  /** Absent: the default network alone (as every container before user networks). */
  networks?: NetworkAttachmentOptions[];
  dns?: string[];
  extraHosts?: ExtraHost[];
}

export const HOST_GATEWAY = 'host-gateway';

export function parseAddHost(spec: string): ExtraHost {
  // NAME:IP (docker) or NAME=IP (newer docker); an IPv6 address has colons of its own, the name has none.
  const m = /^([^:=\s]+)[:=](.+)$/.exec(spec);
  const ip = m?.[2]?.replace(/^\[(.*)\]$/, '$1');
  if (!m || !ip) throw new PocError(`invalid --add-host ${JSON.stringify(spec)}: use NAME:IP`);
  if (!/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,252})$/.test(m[1]!)) throw new PocError(`invalid --add-host ${JSON.stringify(spec)}: ${JSON.stringify(m[1])} is not a host name`);
  if (ip !== HOST_GATEWAY && !isIpv4(ip) && !isIpv6(ip)) throw new PocError(`invalid --add-host ${JSON.stringify(spec)}: ${JSON.stringify(ip)} is not an IP address (or host-gateway)`);
  return { ip, names: [m[1]!] };
}

export function parseNetworkFlags(f: NetworkFlags): NetworkSettings {
  const names = [...new Set(f.network)];
  const special = names.filter((n) => n === 'host' || n === 'none');
  let out: NetworkSettings;
  if (special.length > 0) {
    if (names.length > 1) throw new PocError(`--network ${special[0]} cannot be combined with other networks (given ${names.join(', ')})`);
    out = { network: special[0] as NetworkMode };
  } else if (names.length === 0 || (names.length === 1 && names[0] === DEFAULT_NETWORK)) {
    out = { network: 'bridge' };
  } else {
    for (const n of names) {
      if (n === '' || n === 'default') throw new PocError(`invalid --network ${JSON.stringify(n)}: use bridge, none, host or a network's name`);
    }
    out = { network: 'bridge', networks: names.map((network) => ({ network })) };
  }
  const user = out.networks?.filter((a) => a.network !== DEFAULT_NETWORK) ?? [];
  if (f.networkAliases.length > 0) {
    if (user.length === 0) throw new PocError('--network-alias needs a user network (--network NAME, made by "poc network create")');
    for (const a of f.networkAliases) checkAlias(a);
    for (const u of user) u.aliases = [...f.networkAliases];
  }
  if (f.ip !== undefined) {
    if (user.length === 0) throw new PocError('--ip needs a user network (--network NAME): the default network hands out its addresses itself');
    if (!isIpv4(f.ip)) throw new PocError(`invalid --ip ${JSON.stringify(f.ip)}: not an IPv4 address`);
    user[0]!.ip = f.ip;
  }
  if (f.dns.length > 0) {
    if (out.network === 'none') throw new PocError('--dns needs a network (the network is none)');
    for (const d of f.dns) if (!isIpv4(d) && !isIpv6(d)) throw new PocError(`invalid --dns ${JSON.stringify(d)}: not an IP address`);
    out.dns = [...f.dns];
  }
  if (f.addHosts.length > 0) out.extraHosts = f.addHosts.map(parseAddHost);
  return out;
}
