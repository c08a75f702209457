/**
 * A service → the container poc makes for it (pure): the same flags `poc run` takes (RunFlags, checked by
 * src/poc/containers/options.ts as any `poc run`'s), plus what a flag cannot say (an entrypoint of several
 * words, a health check's CMD list, per-network aliases and addresses), and docker compose's labels, with the
 * config hash that tells `up` whether a running container still matches its service.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { PocError } from '../errors.js';
import type { ContainerOptions, RunFlags } from '../containers/options.js';
import { parseDuration, type HealthConfig } from '../containers/health.js';
import { checkAlias } from '../network/flags.js';
import { formatPublish } from '../network/publish.js';
import { parseDotenv, type Lookup } from './interpolate.js';
import { planGrants, type GrantContext } from './secrets.js';
import type { ContainerFile } from '../containers/container-files.js';
import { containerName, DEFAULT_NETWORK_KEY, serviceImage, serviceScale, type MountSpec, type Project, type ServiceSpec } from './model.js';

/** docker compose's label keys: `ps`, `down` and `up` find a project's containers by them. */
export const LABELS = {
  project: 'com.docker.compose.project',
  service: 'com.docker.compose.service',
  number: 'com.docker.compose.container-number',
  oneoff: 'com.docker.compose.oneoff',
  configHash: 'com.docker.compose.config-hash',
  workingDir: 'com.docker.compose.project.working_dir',
  configFiles: 'com.docker.compose.project.config_files',
  dependsOn: 'com.docker.compose.depends_on',
  image: 'com.docker.compose.image',
  version: 'com.docker.compose.version',
  network: 'com.docker.compose.network',
  volume: 'com.docker.compose.volume',
} as const;

export interface ContainerPlan {
  service: string;
  /** Which of the service's containers (`<project>-<service>-<number>`), from 1. */
  number: number;
  name: string;
  image: string;
  flags: RunFlags;
  overrides: Partial<ContainerOptions>;
  /** Secrets and configs given whole (a variable's or content's value, or a file with its own owner or mode). */
  files: ContainerFile[];
  /** sha256 of everything the container is made from but the image and its number (labelled; compared by `up`). */
  configHash: string;
}

export interface PlanContext {
  /** Reads an env_file (throws ENOENT when missing). */
  readFile: (path: string) => string;
  /** Variables for `environment: [NAME]` without a value, and for env files' `${VAR}`. */
  lookup: Lookup;
  version: string;
  /** Reads a secret's or config's file whole (default: readFile's text). */
  readBytes?: (path: string) => Buffer;
  /** Whether a secret's or config's file is there (default: readBytes succeeds). */
  isPresent?: (path: string) => boolean;
}

/** env_file's values, then environment's over them; a name without a value takes the variable's, or is left out. */
export function serviceEnvironment(name: string, s: ServiceSpec, ctx: PlanContext): string[] {
  const env: Record<string, string> = {};
  for (const f of s.envFiles) {
    let text: string;
    try {
      text = ctx.readFile(f.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !f.required) continue;
      throw new PocError(`service ${name}: env_file ${f.path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message}`);
    }
    Object.assign(env, parseDotenv(text, f.path, ctx.lookup));
  }
  for (const [k, v] of Object.entries(s.environment)) {
    const value = v ?? ctx.lookup(k);
    if (value !== undefined) env[k] = value;
  }
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

function mountFlag(m: MountSpec, p: Project, service: string): string {
  const fields = [`type=${m.type}`];
  if (m.type === 'volume' && m.source) fields.push(`source=${p.volumes[m.source]!.name}`);
  if (m.type === 'bind') fields.push(`source=${m.source}`);
  fields.push(`target=${m.target}`);
  if (m.readOnly) fields.push('readonly');
  if (m.nocopy) fields.push('volume-nocopy');
  if (m.propagation) fields.push(`bind-propagation=${m.propagation}`);
  if (m.tmpfsSize !== undefined) fields.push(`tmpfs-size=${m.tmpfsSize}`);
  if (m.tmpfsMode !== undefined) fields.push(`tmpfs-mode=${m.tmpfsMode}`);
  for (const f of fields) if (f.slice(f.indexOf('=') + 1).includes(',')) throw new PocError(`service ${service}: volume ${m.target}: poc cannot mount a path with a comma in it`);
  return fields.join(',');
}

function healthConfig(name: string, h: ServiceSpec['healthcheck']): HealthConfig | undefined {
  if (!h) return undefined;
  if (h.disable || h.test?.[0] === 'NONE') return { Test: ['NONE'] };
  const hc: HealthConfig = { Test: h.test ?? [] };
  const at = (k: string) => `service ${name}: healthcheck.${k}`;
  if (h.interval !== undefined) hc.Interval = parseDuration(h.interval, at('interval'));
  if (h.timeout !== undefined) hc.Timeout = parseDuration(h.timeout, at('timeout'));
  if (h.startPeriod !== undefined) hc.StartPeriod = parseDuration(h.startPeriod, at('start_period'));
  if (h.retries !== undefined) hc.Retries = h.retries;
  return hc;
}

function grantContext(ctx: PlanContext): GrantContext {
  const readBytes = ctx.readBytes ?? ((path: string) => Buffer.from(ctx.readFile(path)));
  const isPresent =
    ctx.isPresent ??
    ((path: string) => {
      try {
        readBytes(path);
        return true;
      } catch {
        return false;
      }
    });
  return { readBytes, isPresent, lookup: ctx.lookup };
}

/** The networks a service joins: its own list, else the project's default network. */
export function serviceNetworkKeys(s: ServiceSpec): string[] {
  if (s.networkMode) return [];
  const keys = Object.keys(s.networks);
  return keys.length > 0 ? keys : [DEFAULT_NETWORK_KEY];
}

export function planContainer(p: Project, service: string, ctx: PlanContext, number = 1): ContainerPlan {
  const s = p.services[service];
  if (!s) throw new PocError(`no such service: ${service}`);
  const name = containerName(p.name, service, s, number);
  const stopTimeout = s.stopGracePeriod !== undefined ? Math.ceil(parseDuration(s.stopGracePeriod, `service ${service}: stop_grace_period`) / 1e9) : undefined;
  const grants = planGrants(service, [...s.secrets.map((grant) => ({ kind: 'secret' as const, grant })), ...s.configs.map((grant) => ({ kind: 'config' as const, grant }))], { secret: p.secrets, config: p.configs }, grantContext(ctx));
  const flags: RunFlags = {
    detach: true,
    interactive: s.stdinOpen ?? false,
    tty: s.tty ?? false,
    rm: false,
    name,
    env: serviceEnvironment(service, s, ctx),
    envFiles: [],
    volumes: [],
    mounts: [...s.volumes.map((m) => mountFlag(m, p, service)), ...grants.mounts],
    publish: s.ports.map((x) => formatPublish({ ...(x.hostIp ? { hostIp: x.hostIp } : {}), hostPort: x.published, containerPort: x.target, protocol: x.protocol })),
    network: s.networkMode ? [s.networkMode] : serviceNetworkKeys(s).map((k) => p.networks[k]?.name ?? `${p.name}_${k}`),
    networkAliases: [],
    dns: s.dns,
    addHosts: s.extraHosts,
    readOnly: s.readOnly ?? false,
    capAdd: s.capAdd,
    capDrop: s.capDrop,
    securityOpts: s.securityOpt,
    privileged: s.privileged ?? false,
    devices: s.devices,
    groupAdd: s.groupAdd,
    ulimits: Object.entries(s.ulimits).map(([k, u]) => `${k}=${u.soft}:${u.hard}`),
    sysctls: Object.entries(s.sysctls).map(([k, v]) => `${k}=${v}`),
    tmpfs: s.tmpfs,
    init: s.init ?? false,
    labels: Object.entries(s.labels).map(([k, v]) => `${k}=${v}`),
    image: serviceImage(p.name, service, s),
    command: s.command ?? [],
    ...(s.hostname !== undefined ? { hostname: s.hostname } : {}),
    ...(s.workingDir !== undefined ? { workdir: s.workingDir } : {}),
    ...(s.user !== undefined ? { user: s.user } : {}),
    ...(s.restart !== undefined ? { restart: s.restart } : {}),
    ...(s.limits.memory !== undefined ? { memory: s.limits.memory } : {}),
    ...(s.limits.cpus !== undefined ? { cpus: s.limits.cpus } : {}),
    ...(s.limits.pids !== undefined ? { pidsLimit: String(s.limits.pids) } : {}),
    ...(s.shmSize !== undefined ? { shmSize: s.shmSize } : {}),
    ...(s.stopSignal !== undefined ? { stopSignal: s.stopSignal } : {}),
    ...(stopTimeout !== undefined ? { stopTimeout: String(stopTimeout) } : {}),
  };
  const overrides: Partial<ContainerOptions> = {};
  if (s.entrypoint !== undefined) overrides.entrypoint = s.entrypoint;
  const health = healthConfig(service, s.healthcheck);
  if (health) overrides.healthcheck = health;
  if (!s.networkMode) {
    // Each network with the service's name and its own aliases, as compose's; the address where one is given.
    overrides.networks = serviceNetworkKeys(s).map((k) => {
      const cfg = s.networks[k];
      const aliases = [...new Set([service, ...(cfg?.aliases ?? [])])];
      for (const a of aliases) checkAlias(a);
      return { network: p.networks[k]?.name ?? `${p.name}_${k}`, aliases, ...(cfg?.ipv4Address ? { ip: cfg.ipv4Address } : {}) };
    });
  }
  // A value given whole is in the hash by its digest: a changed secret recreates the container (a bound file is seen as it changes).
  // One hash for all the service's containers, as compose's ServiceHash: the name (its number) is not in it, container_name is.
  const { name: _name, ...hashed } = flags;
  const configHash = createHash('sha256')
    .update(JSON.stringify({ flags: hashed, ...(s.containerName !== undefined ? { containerName: s.containerName } : {}), overrides, ...(grants.digest.length ? { files: grants.digest } : {}) }))
    .digest('hex');
  flags.labels = [
    ...flags.labels,
    `${LABELS.project}=${p.name}`,
    `${LABELS.service}=${service}`,
    `${LABELS.number}=${number}`,
    `${LABELS.oneoff}=False`,
    `${LABELS.configHash}=${configHash}`,
    `${LABELS.workingDir}=${p.workingDir}`,
    `${LABELS.configFiles}=${p.files.join(',')}`,
    `${LABELS.dependsOn}=${Object.entries(s.dependsOn).map(([d, c]) => `${d}:${c.condition}:${c.restart}`).join(',')}`,
    `${LABELS.version}=${ctx.version}`,
  ];
  return { service, number, name, image: flags.image, flags, overrides, files: grants.files, configHash };
}

/**
 * What cannot be given to several containers of one service: a container_name, a fixed host port, a fixed
 * address. Refused before anything is made, as compose-go refuses container_name with replicas (a fixed host
 * port, which compose finds only when the second container cannot bind it, is refused here as well). `where`
 * names the file and key of a path under the service.
 */
export function checkScale(service: string, s: ServiceSpec, n: number, where: (key: string) => string): void {
  if (n <= 1) return;
  const why = `the service has ${n} containers (deploy.replicas, scale or --scale)`;
  if (s.containerName !== undefined) throw new PocError(`${where('container_name')}: can't set container_name ${JSON.stringify(s.containerName)}: ${why}, and a container name must be unique`);
  for (const [i, port] of s.ports.entries()) {
    if (port.published !== 0) throw new PocError(`${where(`ports/${i}`)}: the host port ${port.published} can be published by one container only, and ${why}: leave the host port out, and each gets an ephemeral one`);
  }
  for (const [net, cfg] of Object.entries(s.networks)) {
    if (cfg.ipv4Address) throw new PocError(`${where(`networks/${net}/ipv4_address`)}: the address ${cfg.ipv4Address} is one container's, and ${why}`);
  }
}

/**
 * `--scale SERVICE=N` (repeatable) over the files' deploy.replicas or scale, checked as the files' values are
 * (pure). An unknown service or a bad number is an error naming the flag.
 */
export function applyScale(p: Project, specs: string[], flag = '--scale'): void {
  const files = p.files.map((f) => basename(f)).join(', ');
  for (const spec of specs) {
    const m = /^([^=]+)=(\d+)$/.exec(spec);
    if (!m) throw new PocError(`invalid ${flag} option ${JSON.stringify(spec)}: should be SERVICE=NUM`);
    const [, service, num] = m as unknown as [string, string, string];
    const s = p.services[service];
    if (!s) throw new PocError(`${flag} ${spec}: no such service: ${service}`);
    s.scale = Number(num);
    checkScale(service, s, serviceScale(s), (key) => `${flag} ${spec}: ${files}: /services/${service}/${key}`);
  }
}

/**
 * Which services a command acts on: those named and what they depend on, else every service whose profiles are
 * on (none, or one of --profile / COMPOSE_PROFILES) with what it depends on.
 */
export function selectServices(p: Project, named: string[], profiles: string[]): string[] {
  for (const n of named) if (!p.services[n]) throw new PocError(`no such service: ${n}`);
  const active = (s: ServiceSpec) => s.profiles.length === 0 || s.profiles.some((x) => profiles.includes(x) || x === '*') || profiles.includes('*');
  const start = named.length > 0 ? named : Object.keys(p.services).filter((n) => active(p.services[n]!));
  const out = new Set<string>();
  const add = (n: string) => {
    if (out.has(n)) return;
    out.add(n);
    for (const [dep, d] of Object.entries(p.services[n]!.dependsOn)) {
      if (!p.services[dep]) continue;
      // A service named on the command line brings what it depends on, whatever their profiles (as compose).
      if (named.length === 0 && !active(p.services[dep]!)) {
        if (!d.required) continue;
        throw new PocError(`service ${n} depends on ${dep}, whose profiles (${p.services[dep]!.profiles.join(', ')}) are not enabled: add --profile`);
      }
      add(dep);
    }
  };
  for (const n of start) add(n);
  return [...out];
}
