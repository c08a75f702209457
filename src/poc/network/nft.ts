/**
 * nftables scripts for poc's own table, `table ip poc` (pure). Nothing outside this table is ever touched.
 *
 *   prerouting (nat, dstnat)   traffic to one of the host's addresses → @ports verdict map → container chain
 *   output     (nat, -100)     the same for connections made on the host itself (127.0.0.1:PORT included)
 *   postrouting (nat, srcnat)  masquerade the bridge subnet out of the default-route interface;
 *                              masquerade 127.0.0.0/8 sources leaving on the bridge (host → 127.0.0.1:PORT);
 *                              masquerade DNATed traffic from the bridge subnet back into it (hairpin)
 *   guard (filter, raw)        drop packets from the bridge addressed to 127.0.0.0/8: the bridge has
 *                              route_localnet=1 (needed for the 127.0.0.1 DNAT), and without this a container
 *                              could reach the host's loopback-only services through it
 *   map ports                  { tcp . 8080 : jump ctr_<hash> }: one element per published port
 *   chain ctr_<hash>           one per container: its DNAT rules
 *
 * The base chains are flushed and rewritten on every setup (same content each time, so concurrent setups
 * agree); a container's rules live only in its own chain and its map elements, so teardown deletes exactly
 * those. Each script is applied with one `nft -f`: one transaction, all or nothing.
 */
import type { ContainerNetwork } from './ipam.js';
import { containerChain } from './ipam.js';
import type { PortMapping } from './publish.js';

export const NFT_TABLE = 'poc';
const T = `ip ${NFT_TABLE}`;

export interface BaseRulesConfig {
  bridge: string;
  subnet: string;
  /** Interface of the default route; null: no masquerade (no way out anyway). */
  uplink: string | null;
}

function quote(name: string): string {
  return JSON.stringify(name);
}

/** Creates (if needed) the table, map and base chains, and rewrites the base chains' rules. */
export function nftBaseScript(c: BaseRulesConfig): string {
  const lines = [
    `add table ${T}`,
    `add map ${T} ports { type inet_proto . inet_service : verdict ; }`,
    `add chain ${T} prerouting { type nat hook prerouting priority dstnat ; policy accept ; }`,
    `add chain ${T} output { type nat hook output priority -100 ; policy accept ; }`,
    `add chain ${T} postrouting { type nat hook postrouting priority srcnat ; policy accept ; }`,
    `add chain ${T} guard { type filter hook prerouting priority raw ; policy accept ; }`,
    `flush chain ${T} prerouting`,
    `flush chain ${T} output`,
    `flush chain ${T} postrouting`,
    `flush chain ${T} guard`,
    `add rule ${T} prerouting fib daddr type local meta l4proto . th dport vmap @ports`,
    `add rule ${T} output fib daddr type local meta l4proto . th dport vmap @ports`,
  ];
  if (c.uplink) lines.push(`add rule ${T} postrouting ip saddr ${c.subnet} oifname ${quote(c.uplink)} masquerade`);
  lines.push(
    `add rule ${T} postrouting ip saddr 127.0.0.0/8 oifname ${quote(c.bridge)} masquerade`,
    // Hairpin (a container reaching another through a published port): without this the answer would go
    // straight back over the bridge, from an address the client never talked to. (iifname is unset in
    // postrouting, so the match is on the addresses.)
    `add rule ${T} postrouting ip saddr ${c.subnet} ip daddr ${c.subnet} oifname ${quote(c.bridge)} ct status dnat masquerade`,
    `add rule ${T} guard iifname ${quote(c.bridge)} ip daddr 127.0.0.0/8 drop`,
  );
  return `${lines.join('\n')}\n`;
}

function dnatRule(chain: string, ip: string, p: PortMapping): string {
  const daddr = p.hostIp ? `ip daddr ${p.hostIp} ` : '';
  return `add rule ${T} ${chain} ${daddr}${p.protocol} dport ${p.hostPort} dnat to ${ip}:${p.containerPort}`;
}

/** A container's chain, its DNAT rules and its map elements (replacing any it had). */
export function nftContainerScript(c: Pick<ContainerNetwork, 'containerId' | 'ip' | 'publish'>): string {
  const chain = containerChain(c.containerId);
  const lines = [`add chain ${T} ${chain}`, `flush chain ${T} ${chain}`];
  for (const p of c.publish) lines.push(dnatRule(chain, c.ip, p));
  for (const p of c.publish) lines.push(`add element ${T} ports { ${p.protocol} . ${p.hostPort} : jump ${chain} }`);
  return `${lines.join('\n')}\n`;
}

/**
 * Removes a container's elements and chain. Each is first added (a no-op when present), so the script also
 * succeeds when they are already gone: teardown is idempotent. Needs the table and map to exist.
 */
export function nftContainerTeardownScript(c: Pick<ContainerNetwork, 'containerId' | 'publish'>): string {
  const chain = containerChain(c.containerId);
  const lines = [`add chain ${T} ${chain}`];
  for (const p of c.publish) {
    lines.push(`add element ${T} ports { ${p.protocol} . ${p.hostPort} : jump ${chain} }`);
    lines.push(`delete element ${T} ports { ${p.protocol} . ${p.hostPort} }`);
  }
  lines.push(`flush chain ${T} ${chain}`, `delete chain ${T} ${chain}`);
  return `${lines.join('\n')}\n`;
}

/** Removes the whole table (`poc network prune` / the end of a test): only poc's own table. */
export function nftDeleteTableScript(): string {
  return `delete table ${T}\n`;
}
