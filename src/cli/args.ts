import minimist from 'minimist';
import { UserError } from '../errors.js';

export interface FlagSpec {
  string?: string[];
  boolean?: string[];
  alias?: Record<string, string>;
  /** Flags that may be given several times (collected into an array). */
  repeat?: string[];
  /** Flags another program takes (docker run's) that this command does not: named as such when given. */
  unsupported?: { program: string; flags: ReadonlySet<string> };
}

export interface Parsed {
  flags: Record<string, unknown>;
  args: string[];
}

/** What a command line says of one of its commands: its --help text and how many arguments it takes. */
export interface CommandShape {
  usage: string;
  summary: string;
  /** Positional arguments: how many at least and at most. */
  args: [min: number, max: number];
}

/**
 * A command's --help text when it was asked for (the command then prints it and does nothing else), else
 * undefined once the number of arguments is checked: too few or too many is the error `fail` makes, naming
 * the command and its usage.
 */
export function helpOrCheckArgs(program: string, name: string, command: CommandShape, parsed: Parsed, fail: new (message: string) => Error): string | undefined {
  if (parsed.flags.help) return `Usage: ${program} ${command.usage}\n\n${command.summary}\n`;
  const [min, max] = command.args;
  if (parsed.args.length < min) throw new fail(`${name}: missing argument; usage: ${program} ${command.usage}`);
  if (parsed.args.length > max) throw new fail(`${name}: unexpected argument ${JSON.stringify(parsed.args[max])}; usage: ${program} ${command.usage}`);
  return undefined;
}

/**
 * minimist with the strictness a runtime needs: an unknown flag is an error, not a silent positional.
 * Both `--flag value` and `--flag=value` work.
 */
export function parseFlags(argv: string[], spec: FlagSpec, where: string, stopEarly = false): Parsed {
  const known = new Set([...(spec.string ?? []), ...(spec.boolean ?? []), ...Object.keys(spec.alias ?? {})]);
  // minimist reads any `--no-X` as X=false, so a flag really named `no-X` (--no-pivot, --no-new-privs) would come
  // out false: spell it `--no-X=true` before minimist sees it.
  const negated = new Set((spec.boolean ?? []).filter((name) => name.startsWith('no-')).map((name) => `--${name}`));
  const end = argv.indexOf('--');
  argv = argv.map((arg, i) => (negated.has(arg) && (end < 0 || i < end) ? `${arg}=true` : arg));
  // As Go's flag package (runc): a flag that takes a value takes the next word even when it is a negative number
  // (`--pids-limit -1`); minimist would read that as the flag -1.
  const takesValue = new Set([...(spec.string ?? []).map((n) => `--${n}`)]);
  for (const [from, to] of Object.entries(spec.alias ?? {})) if (spec.string?.includes(to)) takesValue.add(from.length === 1 ? `-${from}` : `--${from}`);
  for (let i = 0; i + 1 < argv.length; i++) {
    if (argv[i] === '--') break;
    if (takesValue.has(argv[i]!) && /^-\d/.test(argv[i + 1]!)) argv.splice(i, 2, `${argv[i]}=${argv[i + 1]}`);
  }
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
  if (unknown && spec.unsupported?.flags.has(unknown.replace(/^--?/, ''))) {
    throw new UserError(`${where ? `${where}: ` : ''}${unknown} is a ${spec.unsupported.program} flag that poc does not support`);
  }
  if (unknown) throw new UserError(`${where ? `${where}: ` : ""}unknown flag ${unknown}`);
  for (const name of spec.string ?? []) {
    const value = parsed[name];
    if (Array.isArray(value) && !spec.repeat?.includes(name)) {
      throw new UserError(`${where ? `${where}: ` : ""}flag --${name} given more than once`);
    }
  }
  const valued = new Set([...(spec.string ?? []), ...Object.entries(spec.alias ?? {}).filter(([, to]) => spec.string?.includes(to)).map(([from]) => from)]);
  const last = argv.at(-1);
  if (last && /^--?[^-=]/.test(last) && valued.has(last.replace(/^--?/, ''))) {
    throw new UserError(`${where ? `${where}: ` : ""}flag ${last} needs a value`);
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
  if (!/^\d+$/.test(v)) throw new UserError(`flag --${name}: ${JSON.stringify(v)} is not a non-negative integer`);
  return Number(v);
}

/**
 * For commands that take a command line after their arguments (`exec ID CMD ARGS...`, `ps ID -- PS-ARGS`): splits
 * argv at the first positional argument, so that flags after it belong to the command line, not to pocrun, and a
 * `--` in it is kept. Returns the flags part and the positional part (a `--` just before the first one dropped).
 */
export function splitAtFirstArg(argv: string[], spec: FlagSpec): [flags: string[], positional: string[]] {
  const valued = new Set(spec.string ?? []);
  for (const [from, to] of Object.entries(spec.alias ?? {})) if (valued.has(to)) valued.add(from);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return [argv.slice(0, i), argv.slice(i + 1)];
    if (!arg.startsWith('-') || arg === '-') return [argv.slice(0, i), argv.slice(i)];
    if (arg.includes('=')) continue;
    // --name VALUE, -n VALUE, and -abn VALUE (the last of grouped short flags takes the value)
    const name = arg.startsWith('--') ? arg.slice(2) : arg.slice(-1);
    if (valued.has(name)) i++;
  }
  return [argv, []];
}
