/**
 * Several -f files laid over each other (pure), by the Compose Specification's merge rules as docker compose
 * applies them: a later file's scalar replaces; command, entrypoint and a healthcheck's test replace; mappings
 * (environment, labels, sysctls, ulimits, networks, depends_on, build args) merge key by key; volumes, secrets
 * and configs merge by their container path; the other sequences (ports, dns, cap_add, ...) append what is not there yet.
 */
import type { FileModel } from './normalize.js';
import { emptyService, type ServiceSpec } from './model.js';

type Service = Partial<ServiceSpec>;

const MAPS = ['environment', 'labels', 'sysctls', 'ulimits', 'networks', 'dependsOn', 'limits'] as const;
const APPENDED = ['ports', 'expose', 'capAdd', 'capDrop', 'securityOpt', 'devices', 'tmpfs', 'profiles', 'extraHosts', 'dns', 'groupAdd', 'envFiles'] as const;

function unique<T>(list: T[]): T[] {
  const seen = new Set<string>();
  return list.filter((x) => {
    const k = JSON.stringify(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export function mergeService(base: Service, over: Service): Service {
  const out: Service = { ...base };
  for (const [k, v] of Object.entries(over) as Array<[keyof ServiceSpec, unknown]>) {
    if ((MAPS as readonly string[]).includes(k)) {
      (out as Record<string, unknown>)[k] = { ...((base[k] as object) ?? {}), ...(v as object) };
    } else if ((APPENDED as readonly string[]).includes(k)) {
      (out as Record<string, unknown>)[k] = unique([...((base[k] as unknown[]) ?? []), ...(v as unknown[])]);
    } else if (k === 'volumes') {
      const byTarget = new Map((base.volumes ?? []).map((m) => [m.target, m]));
      for (const m of over.volumes!) byTarget.set(m.target, m);
      out.volumes = [...byTarget.values()];
    } else if (k === 'secrets' || k === 'configs') {
      // By their path in the container, as volumes.
      const byTarget = new Map((base[k] ?? []).map((g) => [g.target, g]));
      for (const g of over[k]!) byTarget.set(g.target, g);
      out[k] = [...byTarget.values()];
    } else if (k === 'healthcheck') {
      out.healthcheck = { ...(base.healthcheck ?? {}), ...over.healthcheck };
    } else if (k === 'build') {
      const b = over.build!;
      out.build = base.build
        ? {
            ...base.build,
            ...b,
            args: { ...base.build.args, ...b.args },
            // Sequences append, as the others.
            ...(base.build.platforms || b.platforms ? { platforms: unique([...(base.build.platforms ?? []), ...(b.platforms ?? [])]) } : {}),
            ...(base.build.ssh || b.ssh ? { ssh: unique([...(base.build.ssh ?? []), ...(b.ssh ?? [])]) } : {}),
          }
        : b;
    } else {
      (out as Record<string, unknown>)[k] = v;
    }
  }
  return out;
}

/** The files in order, each over the ones before; services get their empty lists and maps. */
export function mergeFiles(files: FileModel[]): Omit<FileModel, 'name' | 'services'> & { services: Record<string, ServiceSpec> } {
  const services: Record<string, Service> = {};
  const networks: FileModel['networks'] = {};
  const volumes: FileModel['volumes'] = {};
  const secrets: FileModel['secrets'] = {};
  const configs: FileModel['configs'] = {};
  for (const f of files) {
    for (const [name, s] of Object.entries(f.services)) services[name] = services[name] ? mergeService(services[name]!, s) : s;
    Object.assign(networks, f.networks);
    Object.assign(volumes, f.volumes);
    Object.assign(secrets, f.secrets);
    Object.assign(configs, f.configs);
  }
  return {
    services: Object.fromEntries(Object.entries(services).map(([name, s]) => [name, { ...emptyService(), ...s }])),
    networks,
    volumes,
    secrets,
    configs,
  };
}
