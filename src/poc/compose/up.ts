/**
 * `poc compose up` and `down`, carried out in-process through poc's own modules: networks (user-networks.ts),
 * volumes (volumes/volume-store.ts), images (build, pull), containers (create, start, stop, rm). Everything that can be
 * checked is checked before anything is made: the files (load.ts), every container's flags (resolveRunFlags
 * through plan.ts), the builds' inputs, the images; so a bad file leaves nothing behind. Each service's
 * containers (one, or its replicas) are converged by reconcile.ts's decisions.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { stderr } from '../../common/output.js';
import { PocError } from '../errors.js';
import { VERSION } from '../../spec/generated/version.js';
import { systemdRunning } from '../../common/systemd.js';
import { createContainer, findImage } from '../containers/provision.js';
import { resolveRunFlags } from '../containers/options.js';
import { startContainer } from '../containers/start.js';
import { removeContainer, stopContainer, waitContainer } from '../containers/stop.js';
import { containerStatus, listContainers, readHealth, type ContainerRecord } from '../containers/container-store.js';
import { resolveImage, type ImageRecord } from '../images/image-store.js';
import type { BuildOptions } from '../build/build.js';
import { buildPlatform } from '../build/platform.js';
import { createNetwork, inspectNetwork, listNetworks, removeNetwork } from '../network/user-networks.js';
import { isRootless } from '../rootless.js';
import { createVolume, listVolumes, removeVolume } from '../volumes/volume-store.js';
import type { RootOptions } from '../poc-root.js';
import type { LoadedProject } from './load.js';
import { dependencyOrder } from './load.js';
import { serviceImage, serviceScale } from './model.js';
import { LABELS, planContainer, serviceNetworkKeys, type ContainerPlan } from './plan.js';
import { containerNumber, converge, orphans, type ExistingContainer } from './reconcile.js';

/** One progress line on stderr, as docker compose prints them. */
export function progress(kind: string, name: string, what: string): void {
  stderr(` \u2714 ${kind} ${name}  ${what}\n`);
}

export function planContext(p: LoadedProject) {
  return { readFile: (f: string) => readFileSync(f, 'utf8'), readBytes: (f: string) => readFileSync(f), isPresent: (f: string) => existsSync(f), lookup: p.lookup, version: VERSION };
}

/** The project's containers, newest first (one-off `run` containers too). */
export function projectContainers(project: string, opts: RootOptions): ContainerRecord[] {
  return listContainers(opts).filter((c) => c.options.labels?.[LABELS.project] === project);
}

export function asExisting(c: ContainerRecord, opts: RootOptions): ExistingContainer {
  const s = containerStatus(c.id, opts).status;
  return { id: c.id, name: c.name, labels: c.options.labels ?? {}, imageId: c.image.id, running: s === 'running' || s === 'restarting' };
}

/** The service's containers, lowest number first: by the labels (docker compose's way), so a renamed service's are orphans. */
export function serviceContainers(project: string, service: string, opts: RootOptions): ContainerRecord[] {
  const number = (c: ContainerRecord) => containerNumber({ labels: c.options.labels ?? {} });
  return projectContainers(project, opts)
    .filter((c) => c.options.labels?.[LABELS.service] === service && c.options.labels?.[LABELS.oneoff] !== 'True')
    .sort((a, b) => number(a) - number(b));
}

/** The service's container number `index` (exec --index), by default its first. */
export function serviceContainer(project: string, service: string, opts: RootOptions, index?: number): ContainerRecord | undefined {
  const all = serviceContainers(project, service, opts);
  return index === undefined ? all[0] : all.find((c) => containerNumber({ labels: c.options.labels ?? {} }) === index);
}

export interface UpOptions extends RootOptions {
  services: string[];
  build: boolean;
  forceRecreate: boolean;
  noRecreate: boolean;
  removeOrphans: boolean;
}

/** Build, or find (pulling what is missing), each service's image. */
export async function ensureImages(p: LoadedProject, services: string[], o: RootOptions & { build: boolean }): Promise<Map<string, ImageRecord>> {
  const images = new Map<string, ImageRecord>();
  const found = (ref: string) => {
    try {
      return resolveImage(ref, o);
    } catch {
      return undefined; // not built yet
    }
  };
  const building = (name: string) => {
    const s = p.services[name]!;
    return Boolean(s.build) && (o.build || s.pullPolicy === 'build' || !found(serviceImage(p.name, name, s)));
  };
  // What each build is given (ssh agents), checked for all before the first is built.
  const inputs = new Map<string, Pick<BuildOptions, 'platform' | 'ssh'>>();
  for (const name of services.filter(building)) inputs.set(name, await buildInputs(p, name));
  for (const name of services) {
    const s = p.services[name]!;
    const ref = serviceImage(p.name, name, s);
    let image: ImageRecord | undefined;
    if (inputs.has(name)) image = await buildService(p, name, o, inputs.get(name)!);
    else if (s.build) image = found(ref);
    if (!image) {
      if (s.pullPolicy === 'never') image = resolveImage(ref, o);
      else if (s.pullPolicy === 'always') image = await pullService(ref, o);
      else image = await findImage(ref, o);
    }
    images.set(name, image);
  }
  return images;
}

/** A pull, as `poc pull` does it (images in use are kept when a tag moves). */
export async function pullService(ref: string, o: RootOptions): Promise<ImageRecord> {
  const { pullImage } = await import('../registry/pull.js');
  const { imagesInUse } = await import('../commands/images.js');
  const r = await pullImage(ref, { ...o, inUse: imagesInUse(o) });
  progress('Image', ref, r.upToDate ? 'Up to date' : 'Pulled');
  return r.image;
}

/**
 * What a service's build is given beyond its Dockerfile: its platform (build.platforms, else the service's
 * platform; each was checked at load to be this machine's, so a list is one platform) and its ssh agents
 * (build.ssh, checked as `poc build --ssh` checks them: a socket or key files that are there).
 */
export async function buildInputs(p: LoadedProject, name: string): Promise<Pick<BuildOptions, 'platform' | 'ssh'>> {
  const s = p.services[name]!;
  const { parseSsh } = await import('../commands/build.js');
  const text = s.build?.platforms?.[0] ?? s.platform;
  let ssh: BuildOptions['ssh'];
  try {
    ssh = parseSsh(s.build?.ssh ?? []);
  } catch (err) {
    throw err instanceof PocError ? new PocError(`service ${name}: build.ssh ${err.message.replace(/^build: --ssh /, '')}`) : err;
  }
  return { ...(text !== undefined ? { platform: buildPlatform(text, `service ${name}: platform`) } : {}), ssh };
}

export async function buildService(p: LoadedProject, name: string, o: RootOptions, inputs: Pick<BuildOptions, 'platform' | 'ssh'>): Promise<ImageRecord> {
  const s = p.services[name]!;
  const b = s.build!;
  if (!existsSync(b.context) || !statSync(b.context).isDirectory()) throw new PocError(`service ${name}: build context ${b.context}: No such directory`);
  const args = Object.fromEntries(
    Object.entries(b.args)
      .map(([k, v]) => [k, v ?? p.lookup(k)] as const)
      .filter((e): e is readonly [string, string] => e[1] !== undefined),
  );
  const { build } = await import('../build/build.js');
  const r = await build({
    ...o,
    context: b.context,
    ...(b.dockerfile !== undefined ? { file: b.dockerfile.startsWith('/') ? b.dockerfile : `${b.context}/${b.dockerfile}` } : {}),
    tags: [serviceImage(p.name, name, s)],
    buildArgs: args,
    ...(b.target !== undefined ? { target: b.target } : {}),
    ...inputs,
    log: (line) => stderr(`${name}: ${line}\n`),
  });
  progress('Image', serviceImage(p.name, name, s), 'Built');
  return r.image;
}

/** Every container's flags checked as `poc run` checks them, before anything is made. */
function checkPlans(plans: ContainerPlan[]): void {
  const ctx = {
    readFile: (f: string) => readFileSync(f, 'utf8'),
    hostEnv: process.env,
    cpuCount: cpus().length,
    systemdRunning: systemdRunning(),
    rootless: isRootless(process.env, process.geteuid?.() ?? 0),
  };
  for (const plan of plans) {
    try {
      resolveRunFlags(plan.flags, ctx);
    } catch (err) {
      throw err instanceof PocError ? err.wrap(`service ${plan.service}`) : err;
    }
  }
}

/** The networks and volumes the services need: external ones must exist; the project's are made when missing. */
async function ensureNetworksAndVolumes(p: LoadedProject, services: string[], o: RootOptions): Promise<void> {
  const netKeys = new Set(services.flatMap((n) => serviceNetworkKeys(p.services[n]!)));
  const volKeys = new Set(services.flatMap((n) => p.services[n]!.volumes.filter((m) => m.type === 'volume' && m.source).map((m) => m.source!)));
  // Checks first: an external network or volume that is missing stops `up` before anything is made.
  for (const key of netKeys) {
    const n = p.networks[key];
    if (n?.external && !listNetworks(o).some((x) => x.name === n.name)) throw new PocError(`network ${n.name} declared as external, but could not be found: make it with "poc network create ${n.name}"`);
  }
  for (const key of volKeys) {
    const v = p.volumes[key]!;
    if (v.external && !listVolumes(o).some((x) => x.Name === v.name)) throw new PocError(`volume ${JSON.stringify(v.name)} declared as external, but could not be found: make it with "poc volume create ${v.name}"`);
  }
  for (const key of netKeys) {
    const n = p.networks[key] ?? { name: `${p.name}_${key}`, external: false, internal: false, enableIpv6: false, subnets: [], gateways: [], labels: {} };
    if (n.external) continue;
    const existing = listNetworks(o).find((x) => x.name === n.name);
    if (existing) {
      if (existing.labels?.[LABELS.project] !== p.name) stderr(`WARN: a network with name ${n.name} exists but was not created by poc compose for project "${p.name}": it is used as it is\n`);
      continue;
    }
    await createNetwork({
      ...o,
      name: n.name,
      subnets: n.subnets,
      gateways: n.gateways,
      internal: n.internal,
      ipv6: n.enableIpv6,
      labels: { ...n.labels, [LABELS.project]: p.name, [LABELS.network]: key, [LABELS.version]: VERSION },
    });
    progress('Network', n.name, 'Created');
  }
  for (const key of volKeys) {
    const v = p.volumes[key]!;
    if (v.external || listVolumes(o).some((x) => x.Name === v.name)) continue;
    await createVolume(v.name, { labels: { ...v.labels, [LABELS.project]: p.name, [LABELS.volume]: key, [LABELS.version]: VERSION } }, o);
    progress('Volume', JSON.stringify(v.name), 'Created');
  }
}

/** Waits for what a service's depends_on asks of each of each dependency's containers (none for a service scaled to 0). */
async function waitDependencies(p: LoadedProject, service: string, o: RootOptions): Promise<void> {
  for (const [dep, d] of Object.entries(p.services[service]!.dependsOn)) {
    if (serviceScale(p.services[dep]!) === 0) continue;
    const cs = serviceContainers(p.name, dep, o);
    if (cs.length === 0) {
      if (d.required) throw new PocError(`service ${service} depends on ${dep}, which has no container`);
      continue;
    }
    for (const c of cs) {
      if (d.condition === 'service_healthy') {
        if (!c.healthcheck) throw new PocError(`dependency failed to start: container ${c.name} has no healthcheck configured`);
        if (readHealth(c.id, o)?.Status !== 'healthy') {
          progress('Container', c.name, 'Waiting');
          try {
            await waitContainer(c, o, 'healthy');
          } catch (err) {
            throw err instanceof PocError ? err.wrap('dependency failed to start') : err;
          }
          if (readHealth(c.id, o)?.Status !== 'healthy') throw new PocError(`dependency failed to start: container ${c.name} is unhealthy`);
          progress('Container', c.name, 'Healthy');
        }
      } else if (d.condition === 'service_completed_successfully') {
        const code = await waitContainer(c, o, 'not-running');
        if (code !== 0) throw new PocError(`service ${dep} didn't complete successfully: exit ${code}`);
      }
    }
  }
}

/** Bind sources the short syntax (or create_host_path) may make, made as docker compose makes them. */
function makeBindSources(p: LoadedProject, service: string): void {
  for (const m of p.services[service]!.volumes) {
    if (m.type === 'bind' && m.createHostPath && m.source && !existsSync(m.source)) mkdirSync(m.source, { recursive: true });
  }
}

export async function up(p: LoadedProject, services: string[], o: UpOptions): Promise<void> {
  const order = dependencyOrder(p.services).filter((n) => services.includes(n));
  const plans = new Map(order.map((n) => [n, planContainer(p, n, planContext(p))]));
  checkPlans([...plans.values()]);
  const images = await ensureImages(p, order, o);
  const existing = projectContainers(p.name, o).map((c) => asExisting(c, o));
  const strays = orphans(existing, Object.keys(p.services));
  for (const c of strays) {
    if (o.removeOrphans) {
      await removeContainer(listContainers(o).find((x) => x.id === c.id)!, { ...o, force: true });
      progress('Container', c.name, 'Removed');
    } else {
      stderr(`WARN: found orphan containers (${c.name}) for this project; run with --remove-orphans to remove them\n`);
    }
  }
  await ensureNetworksAndVolumes(p, order, o);
  for (const service of order) {
    const plan = plans.get(service)!;
    const imageId = images.get(service)!.id;
    const current = serviceContainers(p.name, service, o);
    const records = new Map(current.map((c) => [c.id, c]));
    const todo = converge({ service, configHash: plan.configHash, imageId }, current.map((c) => asExisting(c, o)), serviceScale(p.services[service]!), o);
    await waitDependencies(p, service, o);
    // Scaled down: the outdated and the highest numbers go first, as compose's.
    for (const c of todo.removed) {
      const record = records.get(c.id)!;
      if (await stopContainer(record, o)) progress('Container', c.name, 'Stopped');
      await removeContainer(record, { ...o, force: true });
      progress('Container', c.name, 'Removed');
    }
    for (const { container, action } of todo.kept) {
      const record = records.get(container.id)!;
      if (action === 'keep') {
        progress('Container', container.name, 'Running');
        continue;
      }
      if (action === 'start') {
        await startContainer(record, o);
        progress('Container', container.name, 'Started');
        continue;
      }
      // recreate: the same number, so the same name.
      await stopContainer(record, o);
      await removeContainer(record, { ...o, force: true });
      progress('Container', container.name, 'Recreated');
      await createAndStart(p, planContainer(p, service, planContext(p), containerNumber(container) || 1), imageId, o);
    }
    for (const number of todo.created) {
      const replica = number === plan.number ? plan : planContainer(p, service, planContext(p), number);
      await createAndStart(p, replica, imageId, o, 'Created');
    }
  }
}

/** Makes a planned container and starts it; one that cannot start is removed again. */
async function createAndStart(p: LoadedProject, plan: ContainerPlan, imageId: string, o: RootOptions, announce?: string): Promise<void> {
  makeBindSources(p, plan.service);
  const c = await createContainer({ ...plan.flags, labels: [...plan.flags.labels, `${LABELS.image}=${imageId}`] }, o, plan.overrides, plan.files);
  if (announce) progress('Container', plan.name, announce);
  try {
    await startContainer(c, o);
  } catch (err) {
    await removeContainer(c, { ...o, force: true }).catch(() => {});
    throw err;
  }
  progress('Container', plan.name, 'Started');
}

export interface DownOptions extends RootOptions {
  volumes: boolean;
  removeOrphans: boolean;
  /** Seconds before SIGKILL (default: each container's stop_grace_period, or 10). */
  timeout?: number;
}

/**
 * Stops and removes the project's containers (dependents first), then its networks; with -v its named volumes
 * and the containers' anonymous ones. Without the files (`p` only has a name), what the labels find.
 */
export async function down(p: Pick<LoadedProject, 'name'> & Partial<Pick<LoadedProject, 'services' | 'networks' | 'volumes'>>, o: DownOptions): Promise<void> {
  const all = projectContainers(p.name, o);
  const known = p.services ? Object.keys(p.services) : undefined;
  const order = p.services ? dependencyOrder(p.services).reverse() : [];
  const rank = (c: ContainerRecord) => {
    const i = order.indexOf(c.options.labels?.[LABELS.service] ?? '');
    return i < 0 ? -1 : i;
  };
  const doomed = all
    .filter((c) => !known || o.removeOrphans || known.includes(c.options.labels?.[LABELS.service] ?? '') || c.options.labels?.[LABELS.oneoff] === 'True')
    .sort((a, b) => rank(a) - rank(b));
  for (const c of all) if (!doomed.includes(c)) stderr(`WARN: found orphan containers (${c.name}) for this project; run with --remove-orphans to remove them\n`);
  // Stopped one at a time, dependents first (a service never outlives what it depends on); once all are
  // stopped, removed together, as docker compose removes them.
  for (const c of doomed) {
    if (containerStatus(c.id, o).status === 'running') {
      // Its cleanup (runtime state, network, mount) goes on while the next one stops; rm waits for it.
      await stopContainer(c, { ...o, noWaitCleanup: true, ...(o.timeout !== undefined ? { timeout: o.timeout } : {}) });
      progress('Container', c.name, 'Stopped');
    }
  }
  await Promise.all(
    doomed.map(async (c) => {
      await removeContainer(c, { ...o, force: true, volumes: o.volumes });
      progress('Container', c.name, 'Removed');
    }),
  );
  const networks = listNetworks(o).filter((n) => {
    if (!n.name) return false;
    if (p.networks) return Object.values(p.networks).some((x) => !x.external && x.name === n.name) || (n.name === `${p.name}_default` && n.labels?.[LABELS.project] === p.name);
    return n.labels?.[LABELS.project] === p.name;
  });
  for (const n of networks) {
    if (Object.keys(inspectNetwork(n.name!, o).containers).length > 0) {
      stderr(`WARN: network ${n.name} is still in use: kept\n`);
      continue;
    }
    await removeNetwork(n.name!, o);
    progress('Network', n.name!, 'Removed');
  }
  if (!o.volumes) return;
  const volumes = listVolumes(o).filter((v) => {
    if (p.volumes) return Object.values(p.volumes).some((x) => !x.external && x.name === v.Name);
    return v.Labels[LABELS.project] === p.name;
  });
  for (const v of volumes) {
    await removeVolume(v.Name, o);
    progress('Volume', v.Name, 'Removed');
  }
}
