/**
 * `poc compose config`: the project as poc understood it, back in the Compose Specification's long syntax
 * (pure): every file merged, variables substituted, short forms made long, paths absolute, names resolved.
 */
import { stringify } from 'yaml';
import type { Project, ServiceSpec } from './model.js';
import { EPHEMERAL } from '../network/publish.js';

function service(s: ServiceSpec): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  const set = (k: string, v: unknown) => {
    if (v === undefined) return;
    if (Array.isArray(v) && v.length === 0) return;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) return;
    o[k] = v;
  };
  set('image', s.image);
  if (s.build) set('build', { context: s.build.context, dockerfile: s.build.dockerfile, args: s.build.args, target: s.build.target, platforms: s.build.platforms, ssh: s.build.ssh });
  set('platform', s.platform);
  set('pull_policy', s.pullPolicy);
  set('command', s.command);
  set('entrypoint', s.entrypoint);
  set('environment', s.environment);
  set('env_file', s.envFiles.map((f) => ({ path: f.path, required: f.required })));
  set('working_dir', s.workingDir);
  set('user', s.user);
  set('ports', s.ports.map((p) => ({ target: p.target, ...(p.published !== EPHEMERAL ? { published: String(p.published) } : {}), ...(p.hostIp ? { host_ip: p.hostIp } : {}), protocol: p.protocol })));
  set('expose', s.expose);
  set('network_mode', s.networkMode);
  set('networks', Object.fromEntries(Object.entries(s.networks).map(([k, n]) => [k, n.aliases.length || n.ipv4Address ? { ...(n.aliases.length ? { aliases: n.aliases } : {}), ...(n.ipv4Address ? { ipv4_address: n.ipv4Address } : {}) } : null])));
  set('volumes', s.volumes.map((m) => ({
    type: m.type,
    ...(m.source ? { source: m.source } : {}),
    target: m.target,
    ...(m.readOnly ? { read_only: true } : {}),
    ...(m.type === 'bind' ? { bind: { create_host_path: m.createHostPath ?? false, ...(m.propagation ? { propagation: m.propagation } : {}) } } : {}),
    ...(m.nocopy ? { volume: { nocopy: true } } : {}),
    ...(m.tmpfsSize !== undefined || m.tmpfsMode !== undefined ? { tmpfs: { ...(m.tmpfsSize !== undefined ? { size: m.tmpfsSize } : {}), ...(m.tmpfsMode !== undefined ? { mode: m.tmpfsMode } : {}) } } : {}),
  })));
  set('depends_on', Object.fromEntries(Object.entries(s.dependsOn).map(([k, d]) => [k, { condition: d.condition, required: d.required, restart: d.restart }])));
  if (s.healthcheck) {
    const h = s.healthcheck;
    set('healthcheck', { test: h.test, interval: h.interval, timeout: h.timeout, start_period: h.startPeriod, retries: h.retries, disable: h.disable });
  }
  set('restart', s.restart);
  // The number of containers as docker compose config prints it, once, in deploy.replicas.
  if (Object.keys(s.limits).length || s.scale !== undefined) set('deploy', { ...(s.scale !== undefined ? { replicas: s.scale } : {}), ...(Object.keys(s.limits).length ? { resources: { limits: s.limits } } : {}) });
  set('cap_add', s.capAdd);
  set('cap_drop', s.capDrop);
  set('security_opt', s.securityOpt);
  set('privileged', s.privileged);
  set('devices', s.devices);
  set('ulimits', s.ulimits);
  set('sysctls', s.sysctls);
  set('tmpfs', s.tmpfs);
  set('init', s.init);
  set('labels', s.labels);
  set('hostname', s.hostname);
  set('extra_hosts', s.extraHosts);
  set('dns', s.dns);
  set('stop_signal', s.stopSignal);
  set('stop_grace_period', s.stopGracePeriod);
  set('profiles', s.profiles);
  set('container_name', s.containerName);
  set('read_only', s.readOnly);
  set('shm_size', s.shmSize);
  set('group_add', s.groupAdd);
  set('stdin_open', s.stdinOpen);
  set('tty', s.tty);
  for (const kind of ['secrets', 'configs'] as const) {
    set(kind, s[kind].map((g) => ({ source: g.source, target: g.target, ...(g.uid !== undefined ? { uid: String(g.uid) } : {}), ...(g.gid !== undefined ? { gid: String(g.gid) } : {}), ...(g.mode !== undefined ? { mode: `0${g.mode.toString(8)}` } : {}) })));
  }
  return JSON.parse(JSON.stringify(o)); // drops the undefined fields of nested objects
}

export function projectYaml(p: Project): string {
  const doc: Record<string, unknown> = {
    name: p.name,
    services: Object.fromEntries(Object.keys(p.services).sort().map((n) => [n, service(p.services[n]!)])),
  };
  if (Object.keys(p.networks).length) {
    doc.networks = Object.fromEntries(Object.entries(p.networks).map(([k, n]) => [k, {
      name: n.name,
      ...(n.external ? { external: true } : {}),
      ...(n.internal ? { internal: true } : {}),
      ...(n.enableIpv6 ? { enable_ipv6: true } : {}),
      ...(n.subnets.length ? { ipam: { config: n.subnets.map((subnet, i) => ({ subnet, ...(n.gateways[i] ? { gateway: n.gateways[i] } : {}) })) } } : {}),
      ...(Object.keys(n.labels).length ? { labels: n.labels } : {}),
    }]));
  }
  if (Object.keys(p.volumes).length) {
    doc.volumes = Object.fromEntries(Object.entries(p.volumes).map(([k, v]) => [k, { name: v.name, ...(v.external ? { external: true } : {}), ...(Object.keys(v.labels).length ? { labels: v.labels } : {}) }]));
  }
  for (const kind of ['secrets', 'configs'] as const) {
    if (Object.keys(p[kind]).length) {
      doc[kind] = Object.fromEntries(Object.entries(p[kind]).map(([k, f]) => [k, f.file !== undefined ? { file: f.file } : f.environment !== undefined ? { environment: f.environment } : { content: f.content }]));
    }
  }
  return stringify(doc, { lineWidth: 0 });
}
