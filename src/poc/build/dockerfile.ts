/**
 * A Dockerfile → stages of checked instructions (pure). The syntax (line continuations, the escape directive,
 * comments, flags, JSON arrays, heredoc detection) is dockerfile-ast's, the parser of the Docker language server;
 * what each instruction means and which forms are errors is ours, with the file and line in every message.
 */
import { DockerfileParser } from 'dockerfile-ast';
import { ramInBytes } from '../../common/size.js';
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
  RUN: ['network', 'mount'],
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
  /** RUN's --mount flags, each parsed (the one flag that may be given more than once). */
  mounts: RunMount[];
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

/** A cache mount's sharing, as buildkit: concurrent users share it, wait their turn, or get one of their own. */
export type CacheSharing = 'shared' | 'private' | 'locked';

/** `RUN --mount=...`, as buildkit reads it (bind, cache, tmpfs, secret and ssh). */
export type RunMount =
  | { type: 'bind'; spec: string; target: string; source: string; from?: string; readwrite: boolean }
  | { type: 'cache'; spec: string; target: string; id: string; sharing: CacheSharing; from?: string; source?: string; readonly: boolean; mode: number; uid: number; gid: number }
  | { type: 'tmpfs'; spec: string; target: string; size?: number }
  | { type: 'secret'; spec: string; target: string; id: string; required: boolean; mode: number; uid: number; gid: number }
  | { type: 'ssh'; spec: string; target: string; id: string; required: boolean; mode: number; uid: number; gid: number };

/** Where buildkit puts the Nth ssh mount (0-based, among the RUN's ssh mounts) that names no target. */
export const sshSocketTarget = (n: number): string => `/run/buildkit/ssh_agent.${n}`;

/**
 * Parses one --mount value: comma-separated KEY=VALUE (and the bare ro, rw, required), buildkit's names.
 * `sshIndex`: how many ssh mounts the RUN has before this one (for an ssh mount's default target).
 */
export function parseRunMount(spec: string, where: string, sshIndex = 0): RunMount {
  const bad = (why: string) => buildError(where, `RUN --mount=${spec}: ${why}`);
  const kv = new Map<string, string>();
  for (const field of spec.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? 'true' : field.slice(eq + 1);
    const name = ({ dst: 'target', destination: 'target', src: 'source', readonly: 'ro', readwrite: 'rw' } as Record<string, string>)[key] ?? key;
    if (name === '') throw bad('an empty field');
    kv.set(name, value);
  }
  const type = kv.get('type') ?? 'bind';
  const known: Record<string, string[]> = {
    bind: ['type', 'target', 'source', 'from', 'ro', 'rw'],
    cache: ['type', 'target', 'id', 'ro', 'rw', 'sharing', 'from', 'source', 'mode', 'uid', 'gid'],
    tmpfs: ['type', 'target', 'size'],
    secret: ['type', 'target', 'id', 'required', 'mode', 'uid', 'gid'],
    ssh: ['type', 'target', 'id', 'required', 'mode', 'uid', 'gid'],
  };
  if (!known[type]) throw bad(`type=${type} is not a mount type (bind, cache, tmpfs, secret or ssh)`);
  for (const k of kv.keys()) if (!known[type]!.includes(k)) throw bad(`${k} is not an option of a ${type} mount (${known[type]!.slice(1).join(', ')})`);
  const bool = (k: string) => {
    const v = kv.get(k);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') throw bad(`${k} is true or false, not ${JSON.stringify(v)}`);
    return v === 'true';
  };
  const num = (k: string, dflt: number, base = 10) => {
    const v = kv.get(k);
    if (v === undefined) return dflt;
    if (!(base === 8 ? /^[0-7]{1,4}$/ : /^\d+$/).test(v)) throw bad(`${k}=${v} is not ${base === 8 ? 'an octal mode' : 'a number'}`);
    return parseInt(v, base);
  };
  const target = kv.get('target');
  const absolute = (t: string | undefined) => {
    if (t === undefined || t === '') throw bad('needs a target (target=/PATH)');
    if (!t.startsWith('/')) throw bad(`the target ${t} must be an absolute path`);
    return t;
  };
  // Writable unless ro (or rw=false); a bind is read-only unless rw (or ro=false), as buildkit.
  const writable = (dflt: boolean) => (dflt ? !(bool('ro') === true || bool('rw') === false) : bool('rw') === true || bool('ro') === false);
  switch (type) {
    case 'bind':
      return { type, spec, target: absolute(target), source: kv.get('source') ?? '.', ...(kv.has('from') ? { from: kv.get('from')! } : {}), readwrite: writable(false) };
    case 'cache': {
      const sharing = kv.get('sharing') ?? 'shared';
      if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') throw bad(`sharing=${sharing}: shared, private or locked`);
      const t = absolute(target);
      if (kv.has('source') && !kv.has('from')) throw bad('source needs from (the stage or image whose files seed the cache)');
      const seed = kv.has('from') ? { from: kv.get('from')!, source: kv.get('source') ?? '.' } : {};
      return { type, spec, target: t, id: kv.get('id') ?? t, sharing, ...seed, readonly: !writable(true), mode: num('mode', 0o755, 8), uid: num('uid', 0), gid: num('gid', 0) };
    }
    case 'tmpfs': {
      const t = absolute(target);
      const text = kv.get('size');
      if (text === undefined) return { type, spec, target: t };
      const size = ramInBytes(text);
      if (size === undefined || size === 0) throw bad(`size=${text} is not a size (as 64m, 1g, 1048576)`);
      return { type, spec, target: t, size };
    }
    case 'ssh': {
      const id = kv.get('id') || 'default';
      return { type, spec, target: target ? absolute(target) : sshSocketTarget(sshIndex), id, required: bool('required') ?? false, mode: num('mode', 0o600, 8), uid: num('uid', 0), gid: num('gid', 0) };
    }
    default: {
      const id = kv.get('id') ?? (target ? target.slice(target.lastIndexOf('/') + 1) : undefined);
      if (!id) throw bad('needs an id (id=NAME) or a target');
      return { type: 'secret', spec, target: target ? absolute(target) : `/run/secrets/${id}`, id, required: bool('required') ?? false, mode: num('mode', 0o400, 8), uid: num('uid', 0), gid: num('gid', 0) };
    }
  }
}

/**
 * A RUN whose command is one here-document alone (`RUN <<EOT` ... `EOT`): its content, with leading tabs
 * stripped for `<<-`; null for any other RUN. (A heredoc inside a longer command, `RUN <<EOT bash` or
 * `RUN <<A cat > a`, is the shell's to read: the whole text goes to it, as buildkit does.)
 */
export function soleHeredoc(text: string): { name: string; content: string } | null {
  const m = /^<<(-?)(["']?)([A-Za-z0-9_]+)\2[ \t]*\n([\s\S]*?)\n?\t*\3[ \t]*$/.exec(text.trim());
  // Only <<- lets the closing delimiter be indented with tabs.
  if (!m || (m[1] !== '-' && new RegExp(`\\t${m[3]}[ \\t]*$`).test(text.trim()))) return null;
  const body = m[4]!;
  return { name: m[3]!, content: `${m[1] === '-' ? body.replace(/^\t+/gm, '') : body}\n` };
}

/** A here-document given as a COPY or ADD source: its text, and whether variables expand in it (an unquoted name). */
export interface HeredocSource {
  content: string;
  expand: boolean;
}

/**
 * The here-documents of a COPY or ADD (`COPY <<A <<B /dir/`, then A's lines, then B's): the first line's words
 * with each `<<NAME` as NAME, and each body by name; null when there is none.
 */
export function copyHeredocs(text: string, where: string): { words: string[]; docs: Map<string, HeredocSource> } | null {
  const lines = text.split('\n');
  const words: string[] = [];
  const order: Array<{ name: string; dash: boolean; expand: boolean }> = [];
  for (const w of lines[0]!.trim().split(/\s+/)) {
    const m = /^<<(-?)(["']?)([A-Za-z0-9_]+)\2$/.exec(w);
    if (!m) {
      words.push(w);
      continue;
    }
    order.push({ name: m[3]!, dash: m[1] === '-', expand: m[2] === '' });
    words.push(m[3]!);
  }
  if (order.length === 0) return null;
  const docs = new Map<string, HeredocSource>();
  let at = 1;
  for (const d of order) {
    const body: string[] = [];
    for (;;) {
      if (at >= lines.length) throw buildError(where, `here-document ${d.name} has no closing ${d.name} line`);
      const line = d.dash ? lines[at]!.replace(/^\t+/, '') : lines[at]!;
      at++;
      if (line.trimEnd() === d.name) break;
      body.push(line);
    }
    docs.set(d.name, { content: body.length ? `${body.join('\n')}\n` : '', expand: d.expand });
  }
  return { words, docs };
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
    const mounts: RunMount[] = [];
    const anyIns = ins as unknown as { getFlags?: () => Array<{ getName(): string; getValue(): string | null }> };
    for (const f of anyIns.getFlags?.() ?? []) {
      const name = f.getName();
      if (!allowed.includes(name)) throw buildError(where, `${k} does not take the flag --${name}`);
      const value = f.getValue();
      if (value === null) throw buildError(where, `${k} --${name} needs a value (--${name}=VALUE)`);
      if (name === 'mount') mounts.push(parseRunMount(value, where, mounts.filter((m) => m.type === 'ssh').length));
      else flags[name] = value;
    }
    // dockerfile-ast leaves the flags out of the arguments of the instructions that take flags.
    const text = ins.getArgumentsContent() ?? '';
    const words = ins.getArguments().map((a) => a.getValue());
    const anyProps = ins as unknown as { getProperties?: () => Array<{ getName(): string; getValue(): string | null }> };
    // `ARG A B` declares two names (dockerfile-ast reads it as ENV's legacy `NAME VALUE`): with no = at all, each word is a name.
    const pairs: Array<[string, string | null]> =
      k === 'ARG' && !text.includes('=')
        ? words.map((w) => [w, null])
        : k === 'ENV' || k === 'LABEL' || k === 'ARG' ? (anyProps.getProperties?.() ?? []).map((p) => [p.getName(), p.getValue()]) : [];
    const instruction: Instruction = {
      keyword: k,
      line,
      where,
      text,
      words,
      json: parseJsonArray(text),
      flags,
      mounts,
      pairs,
      source: `${k} ${[...Object.entries(flags), ...mounts.map((m) => ['mount', m.spec] as const)].map(([n, v]) => `--${n}=${v} `).join('')}${text}`.trim(),
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

/**
 * An ONBUILD trigger (`RUN make`, as written) as the instruction a build FROM the image runs, checked: any
 * instruction but ONBUILD, FROM and MAINTAINER, as docker allows. `where` names it in errors.
 */
export function onBuildTrigger(text: string, where: string): Instruction {
  const keyword = /^\s*(\S+)/.exec(text)?.[1]?.toUpperCase();
  if (!keyword) throw buildError(where, 'ONBUILD needs an instruction');
  if (keyword === 'ONBUILD' || keyword === 'FROM' || keyword === 'MAINTAINER') throw buildError(where, `ONBUILD ${keyword} is not allowed`);
  let parsed: ParsedDockerfile;
  try {
    parsed = parseDockerfile(`FROM scratch\n${text}\n`, where);
  } catch (err) {
    // The message names "WHERE:2" (the line in the one-instruction file made here): the trigger is WHERE.
    throw buildError(where, `ONBUILD ${(err as Error).message.replace(/^.*?:2: /, '')}`);
  }
  const ins = parsed.stages[0]!.instructions;
  if (ins.length !== 1) throw buildError(where, `ONBUILD takes one instruction: ${JSON.stringify(text)}`);
  return { ...ins[0]!, where, line: 0 };
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
      if (i.keyword !== 'RUN' && /^<<-?["']?\w+/.test(t)) throw buildError(i.where, `${i.keyword} with a heredoc is not supported by poc build (RUN takes one)`);
      if (t.startsWith('[') && i.json === null && /^\[\s*"/.test(t)) throw buildError(i.where, `${i.keyword}: invalid JSON array ${t}`);
      break;
    case 'COPY':
    case 'ADD': {
      const docs = i.json ? null : copyHeredocs(i.text, i.where);
      if (docs && docs.words.slice(0, -1).some((w) => !docs.docs.has(w))) throw buildError(i.where, `${i.keyword} with here-documents takes no other sources`);
      need((docs?.words ?? i.json ?? i.words).length >= 2, 'needs at least one source and a destination');
      break;
    }
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
      onBuildTrigger(i.text, i.where);
      break;
  }
}
