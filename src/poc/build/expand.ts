/**
 * Variable substitution in Dockerfile words, as docker's shell lexer does it for FROM, COPY, ADD, ENV, LABEL,
 * WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL and ARG (pure): `$VAR`, `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`, `\$` for a literal dollar; single quotes keep their content as
 * it is, double quotes expand inside; quotes are removed. RUN, CMD and ENTRYPOINT are left to the shell.
 */
import { PocError } from '../errors.js';

export type Lookup = (name: string) => string | undefined;

export function expandWord(word: string, lookup: Lookup, where = 'Dockerfile'): string {
  let out = '';
  let i = 0;
  let quote: '"' | "'" | null = null;
  while (i < word.length) {
    const c = word[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else out += c;
      i++;
      continue;
    }
    if (c === '\\' && i + 1 < word.length) {
      const next = word[i + 1]!;
      // Outside quotes a backslash escapes anything; inside double quotes only $ " and \.
      if (quote === null || next === '$' || next === '"' || next === '\\') {
        out += next;
        i += 2;
        continue;
      }
      out += c;
      i++;
      continue;
    }
    if (c === "'" && quote === null) {
      quote = "'";
      i++;
      continue;
    }
    if (c === '"') {
      quote = quote === '"' ? null : '"';
      i++;
      continue;
    }
    if (c === '$') {
      const [text, next] = variable(word, i, lookup, where);
      out += text;
      i = next;
      continue;
    }
    out += c;
    i++;
  }
  if (quote !== null) throw new PocError(`${where}: unterminated ${quote} quote in ${JSON.stringify(word)}`);
  return out;
}

/**
 * Variables in a here-document's text (COPY <<EOF): `$VAR` and `${VAR...}` as in a word, `\$` a literal dollar;
 * quotes and other backslashes are the text's own, as buildkit expands a heredoc.
 */
export function expandText(text: string, lookup: Lookup, where = 'Dockerfile'): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\\' && text[i + 1] === '$') {
      out += '$';
      i += 2;
    } else if (c === '$') {
      const [value, next] = variable(text, i, lookup, where);
      out += value;
      i = next;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** The value of the variable reference at word[i] ("$") and the index after it. */
function variable(word: string, i: number, lookup: Lookup, where: string): [string, number] {
  const rest = word.slice(i + 1);
  const simple = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest);
  if (simple) return [lookup(simple[0]) ?? '', i + 1 + simple[0].length];
  if (!rest.startsWith('{')) return ['$', i + 1];
  const close = findClose(word, i + 2);
  if (close === -1) throw new PocError(`${where}: missing } in ${JSON.stringify(word)}`);
  const body = word.slice(i + 2, close);
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])(.*))?$/s.exec(body);
  if (!m) throw new PocError(`${where}: bad substitution \${${body}}`);
  const [, name, op, arg] = m;
  const value = lookup(name!);
  const set = op?.startsWith(':') ? value !== undefined && value !== '' : value !== undefined;
  let text: string;
  if (op === undefined) text = value ?? '';
  else if (op.endsWith('-')) text = set ? value! : expandWord(arg ?? '', lookup, where);
  else text = set ? expandWord(arg ?? '', lookup, where) : '';
  return [text, close + 1];
}

function findClose(word: string, from: number): number {
  let depth = 1;
  for (let j = from; j < word.length; j++) {
    if (word[j] === '\\') {
      j++;
      continue;
    }
    if (word[j] === '{') depth++;
    else if (word[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

/** `NAME=VALUE` lines (an image's Env) as a lookup; the last of a name wins. */
export function envLookup(...lists: Array<string[] | Map<string, string>>): Lookup {
  const map = new Map<string, string>();
  for (const list of lists) {
    if (list instanceof Map) for (const [k, v] of list) map.set(k, v);
    else
      for (const e of list) {
        const eq = e.indexOf('=');
        if (eq > 0) map.set(e.slice(0, eq), e.slice(eq + 1));
      }
  }
  return (name) => map.get(name);
}

/** Sets NAME in an Env list (replacing an earlier NAME=), keeping the order docker keeps. */
export function setEnv(env: string[], name: string, value: string): string[] {
  const out = env.filter((e) => !e.startsWith(`${name}=`));
  const at = env.findIndex((e) => e.startsWith(`${name}=`));
  if (at === -1) return [...out, `${name}=${value}`];
  out.splice(at, 0, `${name}=${value}`);
  return out;
}
