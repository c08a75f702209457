/**
 * Sizes as docker/go-units' RAMInBytes reads them, the syntax runc's and BuildKit's flags take: "512m", "1g",
 * "1.5G", "100k", "64MiB", "1024", "2 gb". The units are binary (1k = 1024) whatever the spelling.
 */
const RAM_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** The size in bytes (whole), or undefined when the text is not one (each caller says why it wanted it). */
export function ramInBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text.trim());
  if (!m) return undefined;
  const value = Number(m[1]);
  if (!Number.isFinite(value)) return undefined;
  return Math.trunc(value * RAM_UNITS[(m[2] ?? '').toLowerCase()]!);
}
