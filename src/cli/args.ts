import minimist from 'minimist';
import { PocError } from '../errors.js';

export interface FlagSpec {
  string?: string[];
  boolean?: string[];
  alias?: Record<string, string>;
  /** Flags that may be given several times (collected into an array). */
  repeat?: string[];
}

export interface Parsed {
  flags: Record<string, unknown>;
  args: string[];
}

/**
 * minimist with the strictness a runtime needs: an unknown flag is an error, not a silent positional.
 * Both `--flag value` and `--flag=value` work.
 */
export function parseFlags(argv: string[], spec: FlagSpec, where: string, stopEarly = false): Parsed {
  const known = new Set([...(spec.string ?? []), ...(spec.boolean ?? []), ...Object.keys(spec.alias ?? {})]);
  let unknown: string | undefined;
  const parsed = minimist(argv, {
    string: spec.string,
    boolean: spec.boolean,
    alias: spec.alias,
    stopEarly,
    unknown: (arg) => {
      if (!arg.startsWith('-') || arg === '-') return true;
      const name = arg.replace(/^--?/, '').split('=')[0]!;
      if (!known.has(name) && unknown === undefined) unknown = arg.split('=')[0];
      return known.has(name);
    },
  });
  if (unknown) throw new PocError(`${where ? `${where}: ` : ""}unknown flag ${unknown}`);
  for (const name of spec.string ?? []) {
    const value = parsed[name];
    if (Array.isArray(value) && !spec.repeat?.includes(name)) {
      throw new PocError(`${where ? `${where}: ` : ""}flag --${name} given more than once`);
    }
  }
  const valued = new Set([...(spec.string ?? []), ...Object.entries(spec.alias ?? {}).filter(([, to]) => spec.string?.includes(to)).map(([from]) => from)]);
  const last = argv.at(-1);
  if (last && /^--?[^-=]/.test(last) && valued.has(last.replace(/^--?/, ''))) {
    throw new PocError(`${where ? `${where}: ` : ""}flag ${last} needs a value`);
  }
  return { flags: parsed, args: parsed._.map(String) };
}

export function stringFlag(flags: Record<string, unknown>, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined || v === '') return undefined;
  return Array.isArray(v) ? String(v.at(-1)) : String(v);
}

export function listFlag(flags: Record<string, unknown>, name: string): string[] {
  const v = flags[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

export function intFlag(flags: Record<string, unknown>, name: string, fallback: number): number {
  const v = stringFlag(flags, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v)) throw new PocError(`flag --${name}: ${JSON.stringify(v)} is not a non-negative integer`);
  return Number(v);
}
