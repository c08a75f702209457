/** The default route's interface, from /proc/net/route (pure parser). */

export interface RouteEntry {
  iface: string;
  destination: string;
  gateway: string;
  mask: string;
  metric: number;
  flags: number;
}

/** /proc/net/route: little-endian hex addresses, one route per line after the header. */
export function parseProcNetRoute(text: string): RouteEntry[] {
  const hexIp = (h: string) => {
    const n = parseInt(h, 16);
    return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
  };
  const out: RouteEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    out.push({ iface: f[0]!, destination: hexIp(f[1]!), gateway: hexIp(f[2]!), flags: parseInt(f[3]!, 16), metric: Number(f[6]), mask: hexIp(f[7]!) });
  }
  return out;
}

const RTF_UP = 0x1;

/** The interface of the lowest-metric default route that is up, ignoring `exclude` (poc's own bridge). */
export function defaultRouteInterface(routes: RouteEntry[], exclude: string[] = []): string | null {
  const defaults = routes
    .filter((r) => r.destination === '0.0.0.0' && r.mask === '0.0.0.0' && (r.flags & RTF_UP) !== 0 && !exclude.includes(r.iface))
    .sort((a, b) => a.metric - b.metric);
  return defaults[0]?.iface ?? null;
}
