/**
 * Durations as Go's time.ParseDuration reads them, the syntax runc's, docker's and compose's flags and files take:
 * decimal numbers, each with a unit (ns, us or µs, ms, s, m, h), written together: "30s", "1m30s", "1.5h",
 * "500ms", ".5s"; "0" alone. No sign: nothing here takes a negative duration.
 */
const NS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** The duration in nanoseconds (whole), or undefined when the text is not one (each caller says why it wanted it). */
export function goDurationNs(text: string): number | undefined {
  if (text === '0') return 0;
  const re = /(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) return undefined;
    total += Number(m[1]) * NS[m[2]!]!;
    at = re.lastIndex;
  }
  return text === '' ? undefined : Math.round(total);
}
