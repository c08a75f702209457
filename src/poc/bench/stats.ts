/** Medians and spreads of repeated measurements, and the container/host ratio of paired repetitions. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface Comparison {
  host: number;
  container: number;
  /** container / host of the medians. */
  ratio: number;
  /** The lowest and highest container/host ratio of the repetitions (host i against container i). */
  spread: [number, number];
}

/** host[i] and container[i] were measured one after the other, so they are compared in pairs. */
export function compare(host: readonly number[], container: readonly number[]): Comparison {
  const pairs = host.map((h, i) => container[i]! / h).filter((r) => Number.isFinite(r));
  const h = median(host);
  const c = median(container);
  return {
    host: h,
    container: c,
    ratio: c / h,
    spread: pairs.length ? [Math.min(...pairs), Math.max(...pairs)] : [NaN, NaN],
  };
}
