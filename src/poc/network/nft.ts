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
 *   isolate (filter, forward)  no bridge forwards to another poc bridge; an internal network's bridge forwards
 *                              nothing at all (its containers have no way out)
 *   map ports                  { tcp . 8080 : jump ctr_<hash> }: one element per published port
 * and, once a network is dual-stack, `table ip6 poc` with its masquerade and the same isolation.
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
const T6 = `ip6 ${NFT_TABLE}`;

function quote(name: string): string {
  return JSON.stringify(name);
}

/** What the base rules need of one network. */
export interface BaseNetwork {
  bridge: string;
  subnet: string;
  /** Dual-stack networks: their IPv6 subnet (rules in `table ip6 poc`). */
  subnet6?: string;
  /** No way out: no masquerade, and nothing is forwarded between its bridge and any other interface. */
  internal?: boolean;
}

export interface BaseRulesConfig {
  /** Every network, the default first. */
  networks: BaseNetwork[];
  /** Interface of the default route; null: no masquerade (no way out anyway). */
  uplink: string | null;
}

/**
 * The isolation chain (forward, filter), one list of rules for each family: an internal network's bridge
 * forwards nothing off itself, and no bridge forwards to another poc bridge. Traffic within a bridge is
 * bridged, not forwarded, so it never meets these rules.
 */
function isolationRules(table: string, networks: BaseNetwork[]): string[] {
  const lines: string[] = [];
  const bridges = networks.map((n) => n.bridge);
  for (const n of networks) {
    const b = quote(n.bridge);
    if (n.internal) lines.push(`add rule ${table} isolate iifname ${b} oifname != ${b} drop`, `add rule ${table} isolate oifname ${b} iifname != ${b} drop`);
    const others = bridges.filter((x) => x !== n.bridge);
    if (others.length > 0) lines.push(`add rule ${table} isolate iifname ${b} oifname { ${others.map(quote).join(', ')} } drop`);
  }
  return lines;
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
    `add chain ${T} isolate { type filter hook forward priority filter ; policy accept ; }`,
    `flush chain ${T} prerouting`,
    `flush chain ${T} output`,
    `flush chain ${T} postrouting`,
    `flush chain ${T} guard`,
    `flush chain ${T} isolate`,
    `add rule ${T} prerouting fib daddr type local meta l4proto . th dport vmap @ports`,
    `add rule ${T} output fib daddr type local meta l4proto . th dport vmap @ports`,
  ];
  for (const n of c.networks) {
    if (c.uplink && !n.internal) lines.push(`add rule ${T} postrouting ip saddr ${n.subnet} oifname ${quote(c.uplink)} masquerade`);
    lines.push(
      `add rule ${T} postrouting ip saddr 127.0.0.0/8 oifname ${quote(n.bridge)} masquerade`,
      // Hairpin (a container reaching another through a published port): without this the answer would go
      // straight back over the bridge, from an address the client never talked to. (iifname is unset in
      // postrouting, so the match is on the addresses.)
      `add rule ${T} postrouting ip saddr ${n.subnet} ip daddr ${n.subnet} oifname ${quote(n.bridge)} ct status dnat masquerade`,
      `add rule ${T} guard iifname ${quote(n.bridge)} ip daddr 127.0.0.0/8 drop`,
    );
  }
  lines.push(...isolationRules(T, c.networks));
  if (c.networks.some((n) => n.subnet6)) {
    // IPv6: masquerade out of anything but the bridge itself (other poc bridges are cut off by isolate anyway).
    lines.push(
      `add table ${T6}`,
      `add chain ${T6} postrouting { type nat hook postrouting priority srcnat ; policy accept ; }`,
      `add chain ${T6} isolate { type filter hook forward priority filter ; policy accept ; }`,
      `flush chain ${T6} postrouting`,
      `flush chain ${T6} isolate`,
    );
    for (const n of c.networks) {
      if (n.subnet6 && !n.internal) lines.push(`add rule ${T6} postrouting ip6 saddr ${n.subnet6} oifname != ${quote(n.bridge)} masquerade`);
    }
    lines.push(...isolationRules(T6, c.networks));
  } else {
    // No dual-stack network (left): no IPv6 table either (added first, so that a missing one is no error).
    lines.push(`add table ${T6}`, `delete table ${T6}`);
  }
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

/** Removes poc's own tables (`poc prune` / the end of a test), each first added so that a missing one is no error. */
export function nftDeleteTableScript(): string {
  return `add table ${T}\ndelete table ${T}\nadd table ${T6}\ndelete table ${T6}\n`;
}
