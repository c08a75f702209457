/**
 * A Dockerfile → stages of checked instructions (pure). The syntax (line continuations, the escape directive,
 * comments, flags, JSON arrays, heredoc detection) is dockerfile-ast's, the parser of the Docker language server;
 * what each instruction means and which forms are errors is ours, with the file and line in every message.
 */
import { DockerfileParser } from 'dockerfile-ast';
import { PocError } from '../errors.js';

export type Keyword =
  | 'FROM' | 'RUN' | 'COPY' | 'ADD' | 'ENV' | 'ARG' | 'WORKDIR' | 'USER' | 'CMD' | 'ENTRYPOINT' | 'EXPOSE' | 'LABEL'
  | 'VOLUME' | 'SHELL' | 'STOPSIGNAL' | 'HEALTHCHECK' | 'ONBUILD' | 'MAINTAINER';

export const KEYWORDS: ReadonlySet<string> = new Set<Keyword>([
  'FROM', 'RUN', 'COPY', 'ADD', 'ENV', 'ARG', 'WORKDIR', 'USER', 'CMD', 'ENTRYPOINT', 'EXPOSE', 'LABEL', 'VOLUME',
  'SHELL', 'STOPSIGNAL', 'HEALTHCHECK', 'ONBUILD', 'MAINTAINER',
]);

/** Which flags each instruction takes (buildkit's names); any other is an error. */
const FLAGS: Partial<Record<Keyword, readonly string[]>> = {
  FROM: ['platform'],
  RUN: ['network'],
  COPY: ['chown', 'chmod', 'from', 'link'],
  ADD: ['chown', 'chmod', 'link'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'retries'],
};

export interface Instruction {
  keyword: Keyword;
  /** 1-based. */
  line: number;
  /** `file:line`, for messages. */
  where: string;
  /** The arguments after the flags, as written (continuations joined), variables not yet expanded. */
  text: string;
  /** The words of `text` (quotes kept, as docker splits before expanding). */
  words: string[];
  /** The exec form's strings when `text` is a JSON array of strings. */
  json: string[] | null;
  flags: Record<string, string>;
  /** ENV, LABEL, ARG: name/value pairs (ARG's value null when it has none). */
  pairs: Array<[string, string | null]>;
  /** The instruction as written, for history and cache keys: `RUN apt-get update`. */
  source: string;
}

export interface Stage {
  index: number;
  /** `FROM image AS name`: the name, lower-cased as docker compares them. */
  name: string | null;
  from: Instruction;
  instructions: Instruction[];
}

export interface ParsedDockerfile {
  /** ARGs before the first FROM: usable in FROM lines only (unless re-declared in a stage). */
  globalArgs: Instruction[];
  stages: Stage[];
}

export function buildError(where: string, message: string): PocError {
  return new PocError(`${where}: ${message}`);
}

function parseJsonArray(text: string): string[] | null {
  const t = text.trim();
  if (!t.startsWith('[')) return null;
  try {
    const v = JSON.parse(t) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: the shell form, as docker reads it
  }
  return null;
}

/** Parses and checks a Dockerfile; `file` names it in errors. */
export function parseDockerfile(content: string, file: string): ParsedDockerfile {
  const df = DockerfileParser.parse(content);
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  const names = new Set<string>();
  for (const ins of df.getInstructions()) {
    const line = ins.getRange().start.line + 1;
    const where = `${file}:${line}`;
    const keyword = ins.getKeyword().toUpperCase();
    if (!KEYWORDS.has(keyword)) throw buildError(where, `unknown instruction ${ins.getKeyword()}`);
    const k = keyword as Keyword;
    const allowed = FLAGS[k] ?? [];
    const flags: Record<string, string> = {};
    const anyIns = ins as unknown as { getFlags?: () => Array<{ getName(): string; getValue(): string | null }> };
    for (const f of anyIns.getFlags?.() ?? []) {
      const name = f.getName();
      if (!allowed.includes(name)) throw buildError(where, `${k} does not take the flag --${name}`);
      const value = f.getValue();
      if (value === null) throw buildError(where, `${k} --${name} needs a value (--${name}=VALUE)`);
      flags[name] = value;
    }
    // dockerfile-ast leaves the flags out of the arguments of the instructions that take flags.
    const text = ins.getArgumentsContent() ?? '';
    const words = ins.getArguments().map((a) => a.getValue());
    const anyProps = ins as unknown as { getProperties?: () => Array<{ getName(): string; getValue(): string | null }> };
    const pairs: Array<[string, string | null]> =
      k === 'ENV' || k === 'LABEL' || k === 'ARG' ? (anyProps.getProperties?.() ?? []).map((p) => [p.getName(), p.getValue()]) : [];
    const instruction: Instruction = {
      keyword: k,
      line,
      where,
      text,
      words,
      json: parseJsonArray(text),
      flags,
      pairs,
      source: `${k} ${Object.entries(flags).map(([n, v]) => `--${n}=${v} `).join('')}${text}`.trim(),
    };
    check(instruction);
    if (k === 'FROM') {
      const w = instruction.words;
      const name = w.length === 3 && w[1]!.toUpperCase() === 'AS' ? w[2]!.toLowerCase() : null;
      if (w.length !== 1 && name === null) throw buildError(where, 'FROM takes an image and optionally "AS name": FROM IMAGE [AS NAME]');
      if (name !== null) {
        if (!/^[a-z][a-z0-9._-]*$/.test(name)) throw buildError(where, `invalid stage name ${JSON.stringify(w[2])}: letters, digits and ._- starting with a letter`);
        if (names.has(name)) throw buildError(where, `stage name ${JSON.stringify(name)} is used twice`);
        names.add(name);
      }
      stages.push({ index: stages.length, name, from: instruction, instructions: [] });
    } else if (stages.length === 0) {
      if (k !== 'ARG') throw buildError(where, `${k} before the first FROM: only ARG may come before FROM`);
      globalArgs.push(instruction);
    } else {
      stages[stages.length - 1]!.instructions.push(instruction);
    }
  }
  if (stages.length === 0) throw buildError(file, 'no FROM instruction: a Dockerfile starts with FROM (after any ARG)');
  return { globalArgs, stages };
}

/** What each instruction needs, checked before anything runs. */
function check(i: Instruction): void {
  const need = (ok: boolean, what: string) => {
    if (!ok) throw buildError(i.where, `${i.keyword} ${what}`);
  };
  const t = i.text.trim();
  switch (i.keyword) {
    case 'FROM':
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER':
      need(t !== '', 'needs an argument');
      if (i.keyword === 'WORKDIR' || i.keyword === 'USER' || i.keyword === 'STOPSIGNAL') need(i.words.length === 1, 'takes exactly one argument');
      break;
    case 'RUN':
    case 'CMD':
    case 'ENTRYPOINT':
      need(t !== '' || i.keyword !== 'RUN', 'needs a command');
      if (/^<<-?["']?\w+/.test(t)) throw buildError(i.where, `${i.keyword} with a heredoc is not supported by poc build`);
      if (t.startsWith('[') && i.json === null && /^\[\s*"/.test(t)) throw buildError(i.where, `${i.keyword}: invalid JSON array ${t}`);
      break;
    case 'COPY':
    case 'ADD':
      if (/(^|\s)<<-?["']?\w+/.test(t)) throw buildError(i.where, `${i.keyword} with a heredoc is not supported by poc build`);
      need((i.json ?? i.words).length >= 2, 'needs at least one source and a destination');
      break;
    case 'SHELL':
      need(i.json !== null && i.json.length > 0, 'needs a JSON array: SHELL ["/bin/sh", "-c"]');
      break;
    case 'ENV':
    case 'LABEL':
      need(i.pairs.length > 0, 'needs at least one KEY=VALUE');
      for (const [k, v] of i.pairs) {
        need(k !== '', 'has an empty name');
        need(v !== null, `${k}: a value is missing (${k}=VALUE)`);
      }
      break;
    case 'ARG':
      need(i.pairs.length > 0, 'needs a name: ARG NAME[=DEFAULT]');
      for (const [k] of i.pairs) need(/^[A-Za-z_][A-Za-z0-9_]*$/.test(k), `invalid name ${JSON.stringify(k)}`);
      break;
    case 'EXPOSE':
      need(i.words.length > 0, 'needs a port');
      break;
    case 'VOLUME':
      need(t !== '', 'needs a path');
      break;
    case 'HEALTHCHECK': {
      const first = i.words[0]?.toUpperCase();
      need(first === 'NONE' || first === 'CMD', 'takes NONE or CMD COMMAND');
      if (first === 'CMD') need(i.words.length > 1, 'CMD needs a command');
      break;
    }
    case 'ONBUILD':
      throw buildError(i.where, 'ONBUILD is not supported by poc build');
  }
}
