/**
 * Variables in compose files (pure), as docker compose v2 (compose-go's template and dotenv packages) reads them:
 * `.env` and `env_file` lines, and the substitution of `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` and `$$` in every value of a file (never in keys).
 */
import { PocError } from '../errors.js';

export type Lookup = (name: string) => string | undefined;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * One string with its variables substituted. `where` names the value for errors (the file and the path of the
 * key), as compose's "invalid interpolation format for services.web.image".
 */
export function interpolateString(text: string, lookup: Lookup, where: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const end = closingBrace(text, i + 2);
      if (end < 0) throw badFormat(text, where);
      out += substitute(text.slice(i + 2, end), lookup, where, text);
      i = end + 1;
      continue;
    }
    const m = NAME.exec(text.slice(i + 1));
    if (!m) {
      // A lone "$" (at the end, or before a character that starts no name) is kept, as compose keeps it.
      out += '$';
      i++;
      continue;
    }
    out += lookup(m[0]) ?? '';
    i += 1 + m[0].length;
  }
  return out;
}

/** The index of the "}" that closes a "${" whose body starts at `from` (nested "${...}" counted). */
function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '$' && text[j + 1] === '{') {
      depth++;
      j++;
    } else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function badFormat(text: string, where: string): PocError {
  return new PocError(`${where}: invalid interpolation format ${JSON.stringify(text)}: you may need to escape any $ with another $`);
}

function substitute(body: string, lookup: Lookup, where: string, whole: string): string {
  const m = NAME.exec(body);
  if (!m) throw badFormat(whole, where);
  const name = m[0];
  const rest = body.slice(name.length);
  const value = lookup(name);
  if (rest === '') return value ?? '';
  const op = /^(:?[-?+])/.exec(rest)?.[1];
  if (!op) throw badFormat(whole, where);
  // The word after the operator may hold variables of its own.
  const word = () => interpolateString(rest.slice(op.length), lookup, where);
  const unsetOrEmpty = value === undefined || value === '';
  switch (op) {
    case ':-':
      return unsetOrEmpty ? word() : value;
    case '-':
      return value === undefined ? word() : value;
    case ':?':
      if (unsetOrEmpty) throw new PocError(`${where}: required variable ${name} is missing a value: ${word() || `${name} is unset or empty`}`);
      return value;
    case '?':
      if (value === undefined) throw new PocError(`${where}: required variable ${name} is missing a value: ${word() || `${name} is unset`}`);
      return value;
    case ':+':
      return unsetOrEmpty ? '' : word();
    default: // '+'
      return value === undefined ? '' : word();
  }
}

/** Every string value of a parsed document substituted; `path` gives errors the key (services.web.image). */
export function interpolateTree(value: unknown, lookup: Lookup, where: (path: string) => string, path: string[] = []): unknown {
  if (typeof value === 'string') return interpolateString(value, lookup, where(path.join('.')));
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, lookup, where, [...path, String(i)]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateTree(v, lookup, where, [...path, k])]));
  }
  return value;
}

/**
 * A dotenv file (`.env`, a service's env_file) as compose-go reads one: `KEY=VALUE`, an optional `export `,
 * `#` comments (also after an unquoted value, after a space), single quotes (literal), double quotes (\n, \t,
 * \\, \" and variables), `KEY` alone (its value from `lookup`, left out when unset). Unquoted and double-quoted
 * values have their `${VAR}` substituted from the lines before and then `lookup`.
 */
export function parseDotenv(text: string, file: string, lookup: Lookup = () => undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const vars: Lookup = (n) => out[n] ?? lookup(n);
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    line = line.replace(/^export\s+/, '');
    const m = /^([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:([=:])\s*(.*))?$/s.exec(line);
    if (!m) throw new PocError(`${file}:${lineNo}: invalid line ${JSON.stringify(lines[i])}: use NAME=VALUE`);
    const key = m[1]!;
    if (m[2] === undefined) {
      const v = lookup(key);
      if (v !== undefined) out[key] = v;
      continue;
    }
    let raw = m[3]!;
    const where = `${file}:${lineNo}`;
    const quote = raw[0];
    if (quote === "'" || quote === '"') {
      // A quoted value may go on over several lines.
      let body = raw.slice(1);
      while (!closes(body, quote) && i + 1 < lines.length) body += `\n${lines[++i]!}`;
      const end = closingQuote(body, quote);
      if (end < 0) throw new PocError(`${where}: unterminated ${quote === '"' ? 'double' : 'single'}-quoted value of ${key}`);
      body = body.slice(0, end);
      out[key] = quote === "'" ? body : interpolateString(unescapeDouble(body), vars, where);
      continue;
    }
    const comment = raw.search(/\s#/);
    if (comment >= 0) raw = raw.slice(0, comment);
    out[key] = interpolateString(raw.trim(), vars, where);
  }
  return out;
}

function closingQuote(body: string, quote: string): number {
  for (let j = 0; j < body.length; j++) {
    if (quote === '"' && body[j] === '\\') j++;
    else if (body[j] === quote) return j;
  }
  return -1;
}

const closes = (body: string, quote: string) => closingQuote(body, quote) >= 0;

function unescapeDouble(s: string): string {
  return s.replace(/\\(.)/gs, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c);
}

/**
 * A command or entrypoint given as a string, split into words as compose does (go-shellwords): spaces separate,
 * single and double quotes group, a backslash escapes. Shell operators are not interpreted (`sh -c` does that).
 */
export function splitCommand(text: string, where: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && (text[i + 1] === '"' || text[i + 1] === '\\')) word += text[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new PocError(`${where}: unterminated quote in ${JSON.stringify(text)}`);
  if (inWord) words.push(word);
  return words;
}
