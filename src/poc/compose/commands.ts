/**
 * `poc compose [-f FILE]... [-p NAME] [--project-directory DIR] [--env-file FILE] [--profile P]... COMMAND`:
 * up, down, ps, logs, exec, run, start, stop, restart, pull, build, config. Each loads the project (files.ts,
 * load.ts) and acts through poc's own modules in this process (up.ts and the container modules).
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { stderr, stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { formatLine } from '../containers/logs.js';
import { startContainer } from '../containers/start.js';
import { stopContainer } from '../containers/stop.js';
import { containerStatus, readHealth, type ContainerRecord } from '../containers/container-store.js';
import { shortId, randomHex, type RootOptions } from '../poc-root.js';
import { ago, table, truncate } from '../commands/format.js';
import { statusText } from '../commands/ps.js';
import { discoverFiles } from './files.js';
import { dependencyOrder, loadProject, type LoadedProject } from './load.js';
import { projectYaml } from './config.js';
import { applyScale, LABELS, planContainer, selectServices } from './plan.js';
import { buildInputs, buildService, down, ensureImages, planContext, progress, projectContainers, pullService, serviceContainer, serviceContainers, up } from './up.js';
import { serviceImage } from './model.js';
import { containerNumber } from './reconcile.js';
import { ExitCascade } from './cascade.js';

export interface ProjectOptions extends RootOptions {
  files: string[];
  projectName?: string;
  projectDirectory?: string;
  envFile?: string;
  profiles: string[];
}

export function loadFromCli(o: ProjectOptions): LoadedProject {
  const env = process.env;
  const found = discoverFiles({ files: o.files, cwd: process.cwd(), env, ...(o.projectDirectory ? { projectDirectory: o.projectDirectory } : {}) }, { exists: existsSync });
  const envPath = o.envFile ? resolve(o.envFile) : join(found.workingDir, '.env');
  if (o.envFile && !existsSync(envPath)) throw new PocError(`--env-file ${o.envFile}: No such file or directory`);
  const p = loadProject({
    files: found.files,
    workingDir: found.workingDir,
    ...(o.projectName !== undefined ? { projectName: o.projectName } : {}),
    env,
    ...(existsSync(envPath) ? { dotenv: { path: envPath, text: readFileSync(envPath, 'utf8') } } : {}),
    readFile: (f) => readFileSync(f, 'utf8'),
    cpuCount: cpus().length,
  });
  p.profiles = [...new Set([...p.profiles, ...o.profiles])];
  return p;
}

/**
 * The project for a command that also works without files (down, ps, logs, stop, start, restart with -p): its
 * name alone when no file is found, as docker compose finds the containers by their labels.
 */
function loadOrName(o: ProjectOptions): LoadedProject | { name: string } {
  try {
    return loadFromCli(o);
  } catch (err) {
    if (o.projectName !== undefined && err instanceof PocError && /^no configuration file provided/.test(err.message)) return { name: o.projectName };
    throw err;
  }
}

const isLoaded = (p: LoadedProject | { name: string }): p is LoadedProject => 'services' in p;

/** The project's service containers, in dependency order, restricted to the services named. */
function containersOf(p: LoadedProject | { name: string }, services: string[], o: RootOptions, oneoff = false): ContainerRecord[] {
  const all = projectContainers(p.name, o).filter((c) => oneoff || c.options.labels?.[LABELS.oneoff] !== 'True');
  if (isLoaded(p)) for (const s of services) if (!p.services[s]) throw new PocError(`no such service: ${s}`);
  const order = isLoaded(p) ? dependencyOrder(p.services) : [];
  const svc = (c: ContainerRecord) => c.options.labels?.[LABELS.service] ?? '';
  const number = (c: ContainerRecord) => containerNumber({ labels: c.options.labels ?? {} });
  return all
    .filter((c) => services.length === 0 || services.includes(svc(c)))
    .sort((a, b) => order.indexOf(svc(a)) - order.indexOf(svc(b)) || number(a) - number(b) || a.name.localeCompare(b.name));
}

export interface UpCommandOptions extends ProjectOptions {
  services: string[];
  detach: boolean;
  build: boolean;
  forceRecreate: boolean;
  noRecreate: boolean;
  removeOrphans: boolean;
  /** --wait (implies -d): until each service is running or healthy (wait.ts). */
  wait: boolean;
  /** --wait-timeout, seconds (0: none). */
  waitTimeout?: number;
  /** --scale SERVICE=N, each. */
  scale: string[];
  /** What gave `scale`, for its errors (default --scale; `poc compose scale`'s arguments). */
  scaleFlag?: string;
  /** --abort-on-container-exit (exit) or --abort-on-container-failure (failure): in the foreground, stop all when one exits. */
  cascade?: 'exit' | 'failure';
  /** --exit-code-from SERVICE (implies --abort-on-container-exit): up's status is its container's. */
  exitCodeFrom?: string;
}

export async function composeUp(o: UpCommandOptions): Promise<number> {
  const p = loadFromCli(o);
  applyScale(p, o.scale, o.scaleFlag);
  const services = selectServices(p, o.services, p.profiles);
  if (o.exitCodeFrom !== undefined) {
    if (!p.services[o.exitCodeFrom]) throw new PocError(`--exit-code-from ${o.exitCodeFrom}: no such service: ${o.exitCodeFrom}`);
    if (!services.includes(o.exitCodeFrom)) throw new PocError(`--exit-code-from ${o.exitCodeFrom}: this up does not start the service (name it, or one that depends on it)`);
  }
  await up(p, services, { ...o, services });
  if (o.wait) {
    const { waitForServices } = await import('./wait.js');
    await waitForServices(p, services, (s) => serviceContainers(p.name, s, o), {
      ...o,
      ...(o.waitTimeout !== undefined ? { timeout: o.waitTimeout } : {}),
      onReady: (_s, name) => progress('Container', name, 'Healthy'),
    });
    return 0;
  }
  if (o.detach) return 0;
  return attach(p, services, { ...o, named: o.services });
}

/** `poc compose scale SERVICE=N...`: as compose's, `up -d` of those services (and what they depend on) at those numbers. */
export async function composeScale(o: ProjectOptions & { scale: string[] }): Promise<number> {
  const services = o.scale.map((x) => x.slice(0, Math.max(0, x.indexOf('='))) || x);
  return composeUp({ ...o, services, scaleFlag: 'scale', detach: true, build: false, forceRecreate: false, noRecreate: false, removeOrphans: false, wait: false });
}

/**
 * `up` without -d: the services' output, each line after its container's name, and a line as each container
 * ends, until every container has stopped; ^C (or SIGTERM) stops them, as docker compose does ("Gracefully
 * stopping..."); with --abort-on-container-exit, so does the first to end (ExitCascade).
 */
async function attach(p: LoadedProject, services: string[], o: RootOptions & Pick<UpCommandOptions, 'cascade' | 'exitCodeFrom'> & { named: string[] }): Promise<number> {
  const containers = containersOf(p, services, o);
  let stopping: Promise<unknown> | undefined;
  const stopAll = () => {
    stopping ??= Promise.all(containers.map((c) => stopContainer(c, o).catch(() => false)));
  };
  const onSignal = () => {
    if (stopping) return;
    stderr('Gracefully stopping... (the containers are stopped as poc compose stop does)\n');
    stopAll();
  };
  const cascade = new ExitCascade(o.cascade, o.exitCodeFrom, o.named);
  const onEnd = (c: ContainerRecord) => {
    const s = containerStatus(c.id, o);
    if (!s.exit) return;
    stdout(`${c.name} exited with code ${s.exit.exitCode}\n`);
    if (cascade.ended(c.options.labels?.[LABELS.service] ?? '', s.exit.exitCode) && !stopping) {
      stderr('Aborting on container exit...\n');
      stopAll();
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await printLogs(containers, { ...o, follow: true, timestamps: false, prefix: true }, onEnd);
    await stopping;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return cascade.status;
}

export async function composeDown(o: ProjectOptions & { volumes: boolean; removeOrphans: boolean; timeout?: number }): Promise<number> {
  await down(loadOrName(o), o);
  return 0;
}

export function composePs(o: ProjectOptions & { services: string[]; all: boolean; quiet: boolean; servicesOnly: boolean; format: 'table' | 'json' }): number {
  const p = loadOrName(o);
  if (o.servicesOnly) {
    if (!isLoaded(p)) throw new PocError('ps --services needs the compose files');
    stdout(Object.keys(p.services).map((s) => `${s}\n`).join(''));
    return 0;
  }
  const rows = containersOf(p, o.services, o, true)
    .map((c) => ({ c, s: containerStatus(c.id, o) }))
    .filter(({ s }) => o.all || s.status === 'running' || s.status === 'restarting');
  if (o.quiet) {
    stdout(rows.map(({ c }) => `${c.id}\n`).join(''));
    return 0;
  }
  const health = (c: ContainerRecord) => (c.healthcheck ? readHealth(c.id, o) : undefined);
  const ports = (c: ContainerRecord) => c.options.publish.map((x) => `${x.hostIp ?? '0.0.0.0'}:${x.hostPort}->${x.containerPort}/${x.protocol}`).join(', ');
  if (o.format === 'json') {
    stdout(`${JSON.stringify(rows.map(({ c, s }) => ({
      ID: c.id,
      Name: c.name,
      Image: c.image.name ?? c.image.id,
      Command: c.args.join(' '),
      Project: p.name,
      Service: c.options.labels?.[LABELS.service] ?? '',
      Created: c.created,
      State: s.status,
      Health: health(c)?.Status ?? '',
      ExitCode: s.exit?.exitCode ?? 0,
      Status: statusText(s, Date.now(), health(c)),
      Publishers: c.options.publish.map((x) => ({ URL: x.hostIp ?? '0.0.0.0', TargetPort: x.containerPort, PublishedPort: x.hostPort, Protocol: x.protocol })),
      Labels: c.options.labels ?? {},
    })), null, 2)}\n`);
    return 0;
  }
  stdout(table(
    ['NAME', 'IMAGE', 'COMMAND', 'SERVICE', 'CREATED', 'STATUS', 'PORTS'],
    rows.map(({ c, s }) => [c.name, c.image.name ?? shortId(c.image.id), JSON.stringify(truncate(c.args.join(' '), 20)), c.options.labels?.[LABELS.service] ?? '', ago(c.created), statusText(s, Date.now(), health(c)), ports(c)]),
  ));
  return 0;
}

interface PrintOptions extends RootOptions {
  follow: boolean;
  tail?: number;
  timestamps: boolean;
  prefix: boolean;
}

/** Several containers' logs at once, each line after `NAME  | ` (padded to the longest name), as compose's; `onEnd` as each one's ends. */
async function printLogs(containers: ContainerRecord[], o: PrintOptions, onEnd?: (c: ContainerRecord) => void): Promise<void> {
  const { printContainerLog } = await import('../commands/logs.js');
  const width = Math.max(0, ...containers.map((c) => c.name.length));
  await Promise.all(containers.map(async (c) => {
    await printContainerLog(c, o, (l) => {
      const text = formatLine(l, o.timestamps);
      (l.stream === 'stderr' ? stderr : stdout)(o.prefix ? `${c.name.padEnd(width)}  | ${text}` : text);
    });
    onEnd?.(c);
  }));
}

export async function composeLogs(o: ProjectOptions & { services: string[]; follow: boolean; tail?: number; timestamps: boolean; noLogPrefix: boolean }): Promise<number> {
  const p = loadOrName(o);
  await printLogs(containersOf(p, o.services, o), { ...o, prefix: !o.noLogPrefix });
  return 0;
}

function runningContainer(p: LoadedProject, service: string, o: RootOptions, index?: number): ContainerRecord {
  if (!p.services[service]) throw new PocError(`no such service: ${service}`);
  const c = serviceContainer(p.name, service, o, index);
  if (!c || containerStatus(c.id, o).status !== 'running') throw new PocError(`service "${service}" is not running${index !== undefined ? ` container #${index}` : ''}`);
  return c;
}

export interface ExecOptions extends ProjectOptions {
  service: string;
  command: string[];
  detach: boolean;
  noTty: boolean;
  env: string[];
  user?: string;
  workdir?: string;
  /** --index N: the service's container number N (default: its first). */
  index?: number;
}

export async function composeExec(o: ExecOptions): Promise<number> {
  const p = loadFromCli(o);
  const c = runningContainer(p, o.service, o, o.index);
  const { execCommand } = await import('../commands/exec.js');
  const tty = !o.noTty && Boolean(process.stdin.isTTY) && Boolean(process.stdout.isTTY);
  return execCommand({
    ...o,
    ref: c.id,
    command: o.command,
    detach: o.detach,
    interactive: !o.detach,
    tty,
    env: o.env,
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
  });
}

export interface RunOptions extends ProjectOptions {
  service: string;
  command: string[];
  rm: boolean;
  detach: boolean;
  noDeps: boolean;
  noTty: boolean;
  servicePorts: boolean;
  env: string[];
  name?: string;
  user?: string;
  workdir?: string;
  entrypoint?: string;
}

/**
 * A one-off container of a service (`<project>-<service>-run-<hex>`, labelled oneoff): the service's settings
 * with the command given, its dependencies brought up first unless --no-deps, its ports published only with
 * --service-ports; in the foreground, as `poc run`.
 */
export async function composeRun(o: RunOptions): Promise<number> {
  const p = loadFromCli(o);
  if (!p.services[o.service]) throw new PocError(`no such service: ${o.service}`);
  // Planned first: a bad setting of the service (a missing secret file, ...) is refused before its dependencies start.
  const plan = planContainer(p, o.service, planContext(p));
  if (!o.noDeps) {
    const deps = selectServices(p, [o.service], p.profiles).filter((s) => s !== o.service);
    if (deps.length > 0) await up(p, deps, { ...o, services: deps, build: false, forceRecreate: false, noRecreate: false, removeOrphans: false });
  }
  const [image] = (await ensureImages(p, [o.service], { ...o, build: false })).values();
  const tty = !o.noTty && !o.detach && Boolean(process.stdin.isTTY) && Boolean(process.stdout.isTTY);
  const flags = {
    ...plan.flags,
    name: o.name ?? `${p.name}-${o.service}-run-${randomHex(6)}`,
    detach: o.detach,
    rm: o.rm,
    tty,
    interactive: !o.detach,
    env: [...plan.flags.env, ...o.env],
    publish: o.servicePorts ? plan.flags.publish : [],
    command: o.command.length > 0 ? o.command : plan.flags.command,
    labels: [...plan.flags.labels.map((l) => (l.startsWith(`${LABELS.oneoff}=`) ? `${LABELS.oneoff}=True` : l)), `${LABELS.image}=${image!.id}`],
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
    // --rm and a restart policy cannot go together; a one-off container is not restarted (as compose's).
    restart: 'no',
  };
  const overrides = { ...plan.overrides, ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint === '' ? [] : [o.entrypoint] } : {}) };
  const { runCommand } = await import('../commands/run.js');
  return runCommand({ ...o, flags, overrides, files: plan.files });
}

export async function composeStart(o: ProjectOptions & { services: string[] }): Promise<number> {
  const p = loadOrName(o);
  for (const c of containersOf(p, o.services, o)) {
    if (containerStatus(c.id, o).status === 'running') continue;
    await startContainer(c, o);
    progress('Container', c.name, 'Started');
  }
  return 0;
}

export async function composeStop(o: ProjectOptions & { services: string[]; timeout?: number }): Promise<number> {
  const p = loadOrName(o);
  for (const c of containersOf(p, o.services, o).reverse()) {
    if (await stopContainer(c, { ...o, ...(o.timeout !== undefined ? { timeout: o.timeout } : {}) })) progress('Container', c.name, 'Stopped');
  }
  return 0;
}

export async function composeRestart(o: ProjectOptions & { services: string[]; timeout?: number }): Promise<number> {
  await composeStop(o);
  const p = loadOrName(o);
  for (const c of containersOf(p, o.services, o)) {
    await startContainer(c, o);
    progress('Container', c.name, 'Started');
  }
  return 0;
}

export async function composePull(o: ProjectOptions & { services: string[]; ignoreBuildable: boolean }): Promise<number> {
  const p = loadFromCli(o);
  for (const name of selectServices(p, o.services, p.profiles)) {
    const s = p.services[name]!;
    if (!s.image || (s.build && o.ignoreBuildable)) continue;
    if (s.build) {
      // An image a build makes may not be in any registry yet: a failed pull of it is not an error (compose's).
      try {
        await pullService(s.image, o);
      } catch (err) {
        if (!(err instanceof PocError)) throw err;
        stderr(`WARN: service ${name}: ${err.message} (it has a build)\n`);
      }
      continue;
    }
    await pullService(s.image, o);
  }
  return 0;
}

export async function composeBuild(o: ProjectOptions & { services: string[] }): Promise<number> {
  const p = loadFromCli(o);
  const named = o.services.length > 0 ? o.services : Object.keys(p.services);
  for (const n of named) if (!p.services[n]) throw new PocError(`no such service: ${n}`);
  const built = named.filter((n) => p.services[n]!.build);
  // Every build's ssh agents checked before the first build.
  const inputs = new Map<string, Awaited<ReturnType<typeof buildInputs>>>();
  for (const name of built) inputs.set(name, await buildInputs(p, name));
  for (const name of built) {
    const image = await buildService(p, name, o, inputs.get(name)!);
    stdout(`${serviceImage(p.name, name, p.services[name]!)} ${shortId(image.id)}\n`);
  }
  return 0;
}

export function composeConfig(o: ProjectOptions & { quiet: boolean; servicesOnly: boolean; volumesOnly: boolean }): number {
  const p = loadFromCli(o);
  if (o.quiet) return 0;
  if (o.servicesOnly) stdout(Object.keys(p.services).map((s) => `${s}\n`).join(''));
  else if (o.volumesOnly) stdout(Object.keys(p.volumes).map((v) => `${v}\n`).join(''));
  else stdout(projectYaml(p));
  return 0;
}
