/**
 * One compose file, already checked against the Compose Specification's schema, → the long forms of model.ts
 * (pure). Only the keys the file gives are set, so that merge.ts can lay a later file over an earlier one. A key
 * the specification has and poc does not carry out is an error naming the file, the key's path and the key,
 * never ignored. `x-` keys are the specification's extensions, free for users, and skipped.
 */
import { PocError } from '../errors.js';
import { parsePublish } from '../network/publish.js';
import { parseCpus, parseMemory, parsePidsLimit } from '../containers/options.js';
import { splitCommand } from './interpolate.js';
import { resolvePath } from './files.js';
import { normalizeGrants, normalizeSharedFile } from './secrets.js';
import { buildPlatform } from '../build/platform.js';
import type { BuildSpec, DependsCondition, DependsOn, HealthSpec, MountSpec, NetworkSpec, PortSpec, ServiceNetwork, ServiceSpec, SharedFileSpec, Ulimit, VolumeSpec } from './model.js';

export type Where = (path: Array<string | number>) => string;

export interface NormalizeContext {
  project: string;
  workingDir: string;
  home?: string;
  /** "FILE:LINE: /pointer" for a path in this file. */
  where: Where;
  /** The host's CPUs, which deploy.resources.limits.cpus may not exceed (absent: not checked). */
  cpuCount?: number;
  /** A scalar's text as the file wrote it (a mode's `0440`, which YAML 1.2 reads as decimal). */
  sourceText?: (path: Array<string | number>) => string | undefined;
}

export interface FileModel {
  name?: string;
  services: Record<string, Partial<ServiceSpec>>;
  networks: Record<string, NetworkSpec>;
  volumes: Record<string, VolumeSpec>;
  secrets: Record<string, SharedFileSpec>;
  configs: Record<string, SharedFileSpec>;
}

type Raw = Record<string, any>;

// include: read by include.ts, extends: by extends.ts (both in load.ts's order), not here.
const TOP_KEYS = new Set(['version', 'name', 'services', 'networks', 'volumes', 'secrets', 'configs', 'include']);
const SERVICE_KEYS = new Set([
  'image', 'build', 'pull_policy', 'command', 'entrypoint', 'environment', 'env_file', 'working_dir', 'user', 'ports', 'expose',
  'networks', 'network_mode', 'volumes', 'depends_on', 'healthcheck', 'restart', 'deploy', 'cap_add', 'cap_drop', 'security_opt',
  'privileged', 'devices', 'ulimits', 'sysctls', 'tmpfs', 'init', 'labels', 'hostname', 'extra_hosts', 'dns', 'stop_signal',
  'stop_grace_period', 'profiles', 'container_name', 'read_only', 'shm_size', 'group_add', 'stdin_open', 'tty', 'secrets', 'configs', 'extends',
  'scale', 'platform',
]);

function unsupported(ctx: NormalizeContext, path: Array<string | number>, why = ''): PocError {
  const key = path[path.length - 1];
  return new PocError(`${ctx.where(path)}: poc compose does not support the key ${JSON.stringify(key)}${why ? ` (${why})` : ''}`);
}

/** Any key of `obj` outside `allowed` (and not an x- extension) is an error. */
function onlyKeys(obj: Raw, allowed: Set<string> | string[], ctx: NormalizeContext, path: Array<string | number>): void {
  const set = allowed instanceof Set ? allowed : new Set(allowed);
  for (const k of Object.keys(obj)) if (!set.has(k) && !k.startsWith('x-')) throw unsupported(ctx, [...path, k]);
}

const str = (v: unknown) => (v === null || v === undefined ? '' : String(v));

/** A list of K=V (or K alone: null) or a mapping → a mapping; `nullable` keeps null values (environment). */
function keyValues(v: unknown, nullable: boolean, sep = '='): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (Array.isArray(v)) {
    for (const item of v) {
      const s = String(item);
      const i = s.indexOf(sep);
      if (i < 0) out[s] = nullable ? null : '';
      else out[s.slice(0, i)] = s.slice(i + 1);
    }
  } else if (v && typeof v === 'object') {
    for (const [k, val] of Object.entries(v)) out[k] = val === null || val === undefined ? (nullable ? null : '') : String(val);
  }
  return out;
}

const strings = (v: unknown) => (v === null || v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

function commandList(v: unknown, ctx: NormalizeContext, path: Array<string | number>): string[] {
  if (v === null) return [];
  if (Array.isArray(v)) return v.map(String);
  return splitCommand(String(v), ctx.where(path));
}

export function normalizeFile(raw: Raw, ctx: NormalizeContext): FileModel {
  onlyKeys(raw, TOP_KEYS, ctx, []);
  const services: Record<string, Partial<ServiceSpec>> = {};
  for (const [name, svc] of Object.entries((raw.services ?? {}) as Raw)) services[name] = normalizeService(svc ?? {}, ctx, ['services', name]);
  const networks: Record<string, NetworkSpec> = {};
  for (const [key, net] of Object.entries((raw.networks ?? {}) as Raw)) networks[key] = normalizeNetwork(key, net ?? {}, ctx, ['networks', key]);
  const volumes: Record<string, VolumeSpec> = {};
  for (const [key, vol] of Object.entries((raw.volumes ?? {}) as Raw)) volumes[key] = normalizeVolume(key, vol ?? {}, ctx, ['volumes', key]);
  const shared = (kind: 'secret' | 'config') =>
    Object.fromEntries(Object.entries((raw[`${kind}s`] ?? {}) as Raw).map(([key, v]) => [key, normalizeSharedFile(kind, key, (v ?? {}) as Raw, ctx)]));
  return { ...(raw.name !== undefined ? { name: String(raw.name) } : {}), services, networks, volumes, secrets: shared('secret'), configs: shared('config') };
}

export function normalizeService(s: Raw, ctx: NormalizeContext, at: Array<string | number>): Partial<ServiceSpec> {
  onlyKeys(s, SERVICE_KEYS, ctx, at);
  const o: Partial<ServiceSpec> = {};
  const p = (...rest: Array<string | number>) => [...at, ...rest];
  if (s.image !== undefined) o.image = str(s.image);
  if (s.build !== undefined) o.build = normalizeBuild(s.build, ctx, p('build'));
  if (s.pull_policy !== undefined) {
    const v = str(s.pull_policy);
    if (!['always', 'never', 'missing', 'if_not_present', 'build'].includes(v)) throw new PocError(`${ctx.where(p('pull_policy'))}: pull_policy ${JSON.stringify(v)} is not supported: always, never, missing or build`);
    o.pullPolicy = v === 'if_not_present' ? 'missing' : v;
  }
  if (s.command !== undefined) o.command = commandList(s.command, ctx, p('command'));
  if (s.entrypoint !== undefined) o.entrypoint = commandList(s.entrypoint, ctx, p('entrypoint'));
  if (s.environment !== undefined) o.environment = keyValues(s.environment, true);
  if (s.env_file !== undefined) o.envFiles = envFiles(s.env_file, ctx);
  for (const [key, field] of [['working_dir', 'workingDir'], ['user', 'user'], ['hostname', 'hostname'], ['stop_signal', 'stopSignal'], ['stop_grace_period', 'stopGracePeriod'], ['container_name', 'containerName'], ['restart', 'restart']] as const) {
    if (s[key] !== undefined) o[field] = str(s[key]);
  }
  if (s.shm_size !== undefined) o.shmSize = str(s.shm_size);
  for (const [key, field] of [['privileged', 'privileged'], ['init', 'init'], ['read_only', 'readOnly'], ['stdin_open', 'stdinOpen'], ['tty', 'tty']] as const) {
    if (s[key] !== undefined) o[field] = asBool(s[key], ctx, p(key));
  }
  if (s.ports !== undefined) o.ports = (s.ports as unknown[]).map((x, i) => normalizePort(x, ctx, p('ports', i))).flat();
  if (s.expose !== undefined) o.expose = strings(s.expose);
  if (s.networks !== undefined) o.networks = serviceNetworks(s.networks, ctx, p('networks'));
  if (s.network_mode !== undefined) {
    const m = str(s.network_mode);
    if (m !== 'host' && m !== 'none' && m !== 'bridge') throw unsupported(ctx, p('network_mode'), `${JSON.stringify(m)}: poc takes host, none and bridge`);
    o.networkMode = m;
  }
  if (s.volumes !== undefined) o.volumes = (s.volumes as unknown[]).map((v, i) => normalizeMount(v, ctx, p('volumes', i)));
  if (s.depends_on !== undefined) o.dependsOn = dependsOn(s.depends_on, ctx, p('depends_on'));
  if (s.healthcheck !== undefined) o.healthcheck = healthcheck(s.healthcheck, ctx, p('healthcheck'));
  if (s.deploy !== undefined) o.limits = deployLimits(s.deploy, ctx, p('deploy'));
  // deploy.replicas, or the older scale: both in one file must agree (compose-go's check).
  const replicas = s.deploy?.replicas !== undefined ? count(s.deploy.replicas, ctx, p('deploy', 'replicas')) : undefined;
  const scale = s.scale !== undefined ? count(s.scale, ctx, p('scale')) : undefined;
  if (replicas !== undefined && scale !== undefined && replicas !== scale) {
    throw new PocError(`${ctx.where(p('scale'))}: scale (${scale}) and deploy.replicas (${replicas}) are set to distinct values`);
  }
  const n = replicas ?? scale;
  if (n !== undefined) o.scale = n;
  if (s.platform !== undefined) o.platform = platformOf(str(s.platform), ctx, p('platform'));
  for (const [key, field] of [['cap_add', 'capAdd'], ['cap_drop', 'capDrop'], ['security_opt', 'securityOpt'], ['dns', 'dns'], ['tmpfs', 'tmpfs'], ['profiles', 'profiles'], ['group_add', 'groupAdd']] as const) {
    if (s[key] !== undefined) o[field] = strings(s[key]);
  }
  if (s.devices !== undefined) o.devices = (s.devices as unknown[]).map((d, i) => device(d, ctx, p('devices', i)));
  if (s.ulimits !== undefined) o.ulimits = ulimits(s.ulimits, ctx, p('ulimits'));
  if (s.sysctls !== undefined) o.sysctls = keyValues(s.sysctls, false) as Record<string, string>;
  if (s.labels !== undefined) o.labels = keyValues(s.labels, false) as Record<string, string>;
  if (s.extra_hosts !== undefined) o.extraHosts = extraHosts(s.extra_hosts);
  for (const kind of ['secret', 'config'] as const) {
    const list = s[`${kind}s`] as unknown[] | undefined;
    if (list !== undefined) o[`${kind}s`] = normalizeGrants(kind, list, ctx, p(`${kind}s`), ctx.sourceText ?? (() => undefined));
  }
  return o;
}

function asBool(v: unknown, ctx: NormalizeContext, path: Array<string | number>): boolean {
  if (typeof v === 'boolean') return v;
  const s = str(v).toLowerCase();
  if (['true', 'yes', 'y', 'on', '1'].includes(s)) return true;
  if (['false', 'no', 'n', 'off', '0'].includes(s)) return false;
  throw new PocError(`${ctx.where(path)}: ${JSON.stringify(v)} is not a boolean`);
}

/** A number of containers (deploy.replicas, scale): a whole number, 0 or more (a string once interpolated). */
function count(v: unknown, ctx: NormalizeContext, path: Array<string | number>): number {
  const text = str(v).trim();
  if (!/^\d+$/.test(text)) throw new PocError(`${ctx.where(path)}: invalid number of containers ${JSON.stringify(v)}: a whole number, 0 or more`);
  return Number(text);
}

/** A platform (service.platform, build.platforms): this machine's, as `poc build --platform` takes it; its error names the key. */
function platformOf(text: string, ctx: NormalizeContext, path: Array<string | number>): string {
  buildPlatform(text, ctx.where(path));
  return text;
}

function normalizeBuild(b: unknown, ctx: NormalizeContext, at: Array<string | number>): BuildSpec {
  if (typeof b === 'string') return { context: resolvePath(b, ctx.workingDir, ctx.home), args: {} };
  const r = b as Raw;
  onlyKeys(r, ['context', 'dockerfile', 'args', 'target', 'platforms', 'ssh'], ctx, at);
  if (r.dockerfile_inline !== undefined) throw unsupported(ctx, [...at, 'dockerfile_inline']);
  return {
    context: resolvePath(str(r.context ?? '.'), ctx.workingDir, ctx.home),
    ...(r.dockerfile !== undefined ? { dockerfile: str(r.dockerfile) } : {}),
    args: r.args !== undefined ? keyValues(r.args, true) : {},
    ...(r.target !== undefined ? { target: str(r.target) } : {}),
    ...(r.platforms !== undefined ? { platforms: (r.platforms as unknown[]).map((x, i) => platformOf(str(x), ctx, [...at, 'platforms', i])) } : {}),
    ...(r.ssh !== undefined ? { ssh: buildSsh(r.ssh, ctx, [...at, 'ssh']) } : {}),
  };
}

/**
 * build.ssh, a list (`default`, `ID=PATH`) or a mapping (ID: PATH, or null for the agent of $SSH_AUTH_SOCK), as
 * `poc build --ssh` values; a relative path is the project directory's, as compose-go resolves it. Whether each
 * path is an agent's socket or a key file is poc build's check, when the service is built.
 */
function buildSsh(v: unknown, ctx: NormalizeContext, at: Array<string | number>): string[] {
  const entries: Array<[string, string | undefined, Array<string | number>]> = Array.isArray(v)
    ? v.map((e, i) => {
        const s = str(e);
        const eq = s.indexOf('=');
        return [eq < 0 ? s : s.slice(0, eq), eq < 0 ? undefined : s.slice(eq + 1), [...at, i]];
      })
    : Object.entries((v ?? {}) as Raw).map(([id, path]) => [id, path === null || path === undefined || path === '' ? undefined : str(path), [...at, id]]);
  return entries.map(([id, path, where]) => {
    if (!/^[A-Za-z0-9_.-]+$/.test(id)) throw new PocError(`${ctx.where(where)}: invalid ssh id ${JSON.stringify(id)}: letters, digits and ._- (default, or ID=PATH)`);
    if (path === undefined || path === '') return id;
    return `${id}=${path.split(',').map((x) => resolvePath(x, ctx.workingDir, ctx.home)).join(',')}`;
  });
}

function envFiles(v: unknown, ctx: NormalizeContext): Array<{ path: string; required: boolean }> {
  const list = Array.isArray(v) ? v : [v];
  return list.map((e) => {
    if (typeof e === 'string') return { path: resolvePath(e, ctx.workingDir, ctx.home), required: true };
    const r = e as Raw;
    return { path: resolvePath(str(r.path), ctx.workingDir, ctx.home), required: r.required === undefined ? true : Boolean(r.required) };
  });
}

/**
 * A service's port, short (`[HOST_IP:][HOST:]CONTAINER[/PROTOCOL]`, ranges too) or long syntax, read by `poc run -p`'s
 * parser (one definition of the syntax), its errors pointed at the key. A port without a published one is
 * ephemeral (published 0: poc picks it at create).
 */
function normalizePort(x: unknown, ctx: NormalizeContext, path: Array<string | number>): PortSpec[] {
  let spec: string;
  if (x && typeof x === 'object') {
    const r = x as Raw;
    onlyKeys(r, ['target', 'published', 'host_ip', 'protocol', 'mode', 'name', 'app_protocol'], ctx, path);
    if (r.target === undefined) throw new PocError(`${ctx.where(path)}: a port needs its target (the container port)`);
    for (const k of ['target', 'published', 'host_ip', 'protocol'] as const) {
      if (r[k] !== undefined && /[:/]/.test(str(r[k]))) throw new PocError(`${ctx.where([...path, k])}: invalid ${k} ${JSON.stringify(r[k])}`);
    }
    const published = r.published === undefined ? '' : str(r.published);
    spec = `${r.host_ip ? `${str(r.host_ip)}:` : ''}${published}:${str(r.target)}/${str(r.protocol || 'tcp')}`;
  } else {
    spec = str(x);
  }
  try {
    return parsePublish(spec).map((m) => ({ target: m.containerPort, published: m.hostPort, ...(m.hostIp ? { hostIp: m.hostIp } : {}), protocol: m.protocol }));
  } catch (err) {
    throw err instanceof PocError ? new PocError(`${ctx.where(path)}: ${err.message}`) : err;
  }
}

function serviceNetworks(v: unknown, ctx: NormalizeContext, at: Array<string | number>): Record<string, ServiceNetwork> {
  const out: Record<string, ServiceNetwork> = {};
  if (Array.isArray(v)) {
    for (const n of v) out[String(n)] = { aliases: [] };
    return out;
  }
  for (const [name, cfg] of Object.entries((v ?? {}) as Raw)) {
    const r = (cfg ?? {}) as Raw;
    onlyKeys(r, ['aliases', 'ipv4_address'], ctx, [...at, name]);
    out[name] = { aliases: strings(r.aliases), ...(r.ipv4_address ? { ipv4Address: str(r.ipv4_address) } : {}) };
  }
  return out;
}

const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

function isPathSource(s: string): boolean {
  return s.startsWith('/') || s.startsWith('.') || s.startsWith('~');
}

function normalizeMount(v: unknown, ctx: NormalizeContext, path: Array<string | number>): MountSpec {
  if (typeof v === 'string') return shortMount(v, ctx, path);
  const r = v as Raw;
  onlyKeys(r, ['type', 'source', 'target', 'read_only', 'bind', 'volume', 'tmpfs', 'consistency'], ctx, path);
  const type = str(r.type);
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw unsupported(ctx, [...path, 'type'], `type ${JSON.stringify(type)}: poc takes bind, volume and tmpfs`);
  const target = str(r.target);
  if (!target.startsWith('/')) throw new PocError(`${ctx.where([...path, 'target'])}: the container path ${JSON.stringify(target)} is not absolute`);
  const m: MountSpec = { type, target, readOnly: Boolean(r.read_only) };
  if (type === 'bind') {
    if (!r.source) throw new PocError(`${ctx.where(path)}: a bind mount needs a source`);
    m.source = resolvePath(str(r.source), ctx.workingDir, ctx.home);
    const b = (r.bind ?? {}) as Raw;
    onlyKeys(b, ['propagation', 'create_host_path'], ctx, [...path, 'bind']);
    if (b.propagation !== undefined) m.propagation = str(b.propagation);
    m.createHostPath = b.create_host_path === undefined ? true : Boolean(b.create_host_path);
  } else if (type === 'volume') {
    if (r.source) m.source = str(r.source);
    const vol = (r.volume ?? {}) as Raw;
    onlyKeys(vol, ['nocopy'], ctx, [...path, 'volume']);
    if (vol.nocopy) m.nocopy = true;
  } else {
    if (r.source) throw new PocError(`${ctx.where([...path, 'source'])}: a tmpfs mount has no source`);
    const t = (r.tmpfs ?? {}) as Raw;
    onlyKeys(t, ['size', 'mode'], ctx, [...path, 'tmpfs']);
    if (t.size !== undefined) m.tmpfsSize = str(t.size);
    if (t.mode !== undefined) m.tmpfsMode = Number(t.mode);
  }
  return m;
}

function shortMount(spec: string, ctx: NormalizeContext, path: Array<string | number>): MountSpec {
  const parts = spec.split(':');
  if (parts.length === 1) return { type: 'volume', target: parts[0]!, readOnly: false };
  if (parts.length > 3) throw new PocError(`${ctx.where(path)}: invalid volume ${JSON.stringify(spec)}: use SOURCE:TARGET[:MODE]`);
  const [source, target, mode = ''] = parts as [string, string, string?];
  if (!target.startsWith('/')) throw new PocError(`${ctx.where(path)}: invalid volume ${JSON.stringify(spec)}: the container path ${JSON.stringify(target)} is not absolute`);
  const m: MountSpec = isPathSource(source)
    ? { type: 'bind', source: resolvePath(source, ctx.workingDir, ctx.home), target, readOnly: false, createHostPath: true }
    : { type: 'volume', source, target, readOnly: false };
  for (const opt of mode.split(',').filter(Boolean)) {
    if (opt === 'ro') m.readOnly = true;
    else if (opt === 'rw') m.readOnly = false;
    else if (opt === 'nocopy' && m.type === 'volume') m.nocopy = true;
    else if (PROPAGATIONS.includes(opt) && m.type === 'bind') m.propagation = opt;
    else throw new PocError(`${ctx.where(path)}: volume ${JSON.stringify(spec)}: the mode ${JSON.stringify(opt)} is not supported by poc (ro, rw, nocopy, a propagation)`);
  }
  return m;
}

const CONDITIONS: DependsCondition[] = ['service_started', 'service_healthy', 'service_completed_successfully'];

function dependsOn(v: unknown, ctx: NormalizeContext, at: Array<string | number>): Record<string, DependsOn> {
  const out: Record<string, DependsOn> = {};
  if (Array.isArray(v)) {
    for (const s of v) out[String(s)] = { condition: 'service_started', required: true, restart: false };
    return out;
  }
  for (const [name, cfg] of Object.entries((v ?? {}) as Raw)) {
    const r = (cfg ?? {}) as Raw;
    onlyKeys(r, ['condition', 'required', 'restart'], ctx, [...at, name]);
    const condition = str(r.condition || 'service_started') as DependsCondition;
    if (!CONDITIONS.includes(condition)) throw new PocError(`${ctx.where([...at, name, 'condition'])}: unknown condition ${JSON.stringify(condition)}: ${CONDITIONS.join(', ')}`);
    out[name] = { condition, required: r.required === undefined ? true : Boolean(r.required), restart: Boolean(r.restart) };
  }
  return out;
}

function healthcheck(v: unknown, ctx: NormalizeContext, at: Array<string | number>): HealthSpec {
  const r = (v ?? {}) as Raw;
  onlyKeys(r, ['test', 'interval', 'timeout', 'start_period', 'retries', 'disable'], ctx, at);
  const h: HealthSpec = {};
  if (r.test !== undefined) {
    if (typeof r.test === 'string') h.test = ['CMD-SHELL', r.test];
    else {
      h.test = (r.test as unknown[]).map(String);
      if (!['NONE', 'CMD', 'CMD-SHELL'].includes(h.test[0] ?? '')) throw new PocError(`${ctx.where([...at, 'test'])}: a test list starts with NONE, CMD or CMD-SHELL (given ${JSON.stringify(h.test[0])})`);
    }
  }
  if (r.interval !== undefined) h.interval = str(r.interval);
  if (r.timeout !== undefined) h.timeout = str(r.timeout);
  if (r.start_period !== undefined) h.startPeriod = str(r.start_period);
  if (r.retries !== undefined) h.retries = Number(r.retries);
  if (r.disable !== undefined) h.disable = Boolean(r.disable);
  return h;
}

function deployLimits(v: unknown, ctx: NormalizeContext, at: Array<string | number>): ServiceSpec['limits'] {
  const d = (v ?? {}) as Raw;
  onlyKeys(d, ['resources', 'replicas'], ctx, at);
  const res = (d.resources ?? {}) as Raw;
  onlyKeys(res, ['limits'], ctx, [...at, 'resources']);
  const l = (res.limits ?? {}) as Raw;
  onlyKeys(l, ['cpus', 'memory', 'pids'], ctx, [...at, 'resources', 'limits']);
  // Checked here as `poc run` checks its flags, so that the error points at the key, not at a flag.
  const check = (key: string, parse: (text: string) => unknown) => {
    if (l[key] === undefined) return;
    try {
      parse(str(l[key]));
    } catch (err) {
      throw err instanceof PocError ? new PocError(`${ctx.where([...at, 'resources', 'limits', key])}: ${err.message}`) : err;
    }
  };
  check('cpus', (x) => parseCpus(x, ctx.cpuCount ?? Infinity, 'cpus'));
  check('memory', (x) => parseMemory(x, 'memory'));
  check('pids', (x) => parsePidsLimit(x, 'pids'));
  return {
    ...(l.cpus !== undefined ? { cpus: str(l.cpus) } : {}),
    ...(l.memory !== undefined ? { memory: str(l.memory) } : {}),
    ...(l.pids !== undefined ? { pids: Number(l.pids) } : {}),
  };
}

function device(d: unknown, ctx: NormalizeContext, path: Array<string | number>): string {
  if (typeof d === 'string') return d;
  const r = d as Raw;
  onlyKeys(r, ['source', 'target', 'permissions'], ctx, path);
  return [str(r.source), ...(r.target ? [str(r.target)] : []), ...(r.permissions ? [str(r.permissions)] : [])].join(':');
}

function ulimits(v: unknown, ctx: NormalizeContext, at: Array<string | number>): Record<string, Ulimit> {
  const out: Record<string, Ulimit> = {};
  for (const [name, val] of Object.entries((v ?? {}) as Raw)) {
    if (val && typeof val === 'object') {
      onlyKeys(val as Raw, ['soft', 'hard'], ctx, [...at, name]);
      out[name] = { soft: Number((val as Raw).soft), hard: Number((val as Raw).hard) };
    } else out[name] = { soft: Number(val), hard: Number(val) };
  }
  return out;
}

/** `HOST:IP`, `HOST=IP` or a mapping of HOST to an address (or a list of them), as --add-host lines. */
function extraHosts(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  return Object.entries((v ?? {}) as Raw).flatMap(([host, ip]) => strings(ip).map((a) => `${host}:${a}`));
}

function normalizeNetwork(key: string, n: Raw, ctx: NormalizeContext, at: Array<string | number>): NetworkSpec {
  onlyKeys(n, ['name', 'external', 'driver', 'internal', 'ipam', 'enable_ipv6', 'labels', 'attachable'], ctx, at);
  if (n.driver !== undefined && n.driver !== 'bridge') throw unsupported(ctx, [...at, 'driver'], `driver ${JSON.stringify(n.driver)}: poc's networks are bridges`);
  const external = typeof n.external === 'object' && n.external !== null ? true : Boolean(n.external);
  const subnets: string[] = [];
  const gateways: string[] = [];
  if (n.ipam !== undefined) {
    onlyKeys(n.ipam, ['driver', 'config'], ctx, [...at, 'ipam']);
    if (n.ipam.driver !== undefined && n.ipam.driver !== 'default') throw unsupported(ctx, [...at, 'ipam', 'driver'], `ipam driver ${JSON.stringify(n.ipam.driver)}`);
    ((n.ipam.config ?? []) as Raw[]).forEach((c, i) => {
      onlyKeys(c, ['subnet', 'gateway'], ctx, [...at, 'ipam', 'config', i]);
      if (c.subnet) subnets.push(str(c.subnet));
      if (c.gateway) gateways.push(str(c.gateway));
    });
  }
  const name = n.name !== undefined ? str(n.name) : external ? key : `${ctx.project}_${key}`;
  return {
    name,
    external,
    internal: Boolean(n.internal),
    enableIpv6: Boolean(n.enable_ipv6),
    subnets,
    gateways,
    labels: keyValues(n.labels, false) as Record<string, string>,
  };
}

function normalizeVolume(key: string, v: Raw, ctx: NormalizeContext, at: Array<string | number>): VolumeSpec {
  onlyKeys(v, ['name', 'external', 'driver', 'labels'], ctx, at);
  if (v.driver !== undefined && v.driver !== 'local') throw unsupported(ctx, [...at, 'driver'], `driver ${JSON.stringify(v.driver)}: poc's volumes are local`);
  const external = typeof v.external === 'object' && v.external !== null ? true : Boolean(v.external);
  return {
    name: v.name !== undefined ? str(v.name) : external ? key : `${ctx.project}_${key}`,
    external,
    labels: keyValues(v.labels, false) as Record<string, string>,
  };
}
