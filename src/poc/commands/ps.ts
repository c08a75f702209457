/** `poc ps [-a] [--format json]`: running containers (all with -a), newest first. */
import { stdout } from '../../common/output.js';
import { formatPublish, getContainerNetwork } from '../network/index.js';
import { containerStatus, listContainers, readHealth, type ContainerRecord, type ContainerStatus, type HealthState } from '../containers/container-store.js';
import { shortId, type RootOptions } from '../poc-root.js';
import { ago, humanDuration, table, truncate } from './format.js';

export interface PsOptions extends RootOptions {
  all: boolean;
  /** Only the ids (full ones: they are for scripts). */
  quiet?: boolean;
  format: 'table' | 'json';
}

/** "Up 5 seconds (healthy)", "Restarting (1) 2 seconds ago", "Exited (0) 3 minutes ago", as docker words it. */
export function statusText(s: ContainerStatus, now = Date.now(), health?: HealthState): string {
  if (s.status === 'created') return 'Created';
  if (s.status === 'running') {
    const h = health ? (health.Status === 'starting' ? ' (health: starting)' : ` (${health.Status})`) : '';
    return `Up ${humanDuration(now - Date.parse(s.run!.startedAt))}${h}`;
  }
  if (s.status === 'restarting') return s.exit ? `Restarting (${s.exit.exitCode}) ${ago(s.exit.finishedAt, now)}` : 'Restarting';
  if (s.exit) return `Exited (${s.exit.exitCode}) ${ago(s.exit.finishedAt, now)}`;
  return 'Exited (unknown)';
}

export function psCommand(o: PsOptions): number {
  const rows = listContainers(o)
    .map((c) => ({ c, s: containerStatus(c.id, o) }))
    .filter(({ s }) => o.all || s.status === 'running' || s.status === 'restarting');
  const health = (c: ContainerRecord) => (c.healthcheck ? readHealth(c.id, o) : undefined);
  if (o.quiet) {
    stdout(rows.map(({ c }) => `${c.id}\n`).join(''));
    return 0;
  }
  const ports = (c: ContainerRecord) => c.options.publish.map((p) => `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}->${p.containerPort}/${p.protocol}`);
  if (o.format === 'json') {
    const out = rows.map(({ c, s }) => ({
      id: c.id,
      name: c.name,
      image: c.image.name ?? c.image.id,
      command: c.args,
      created: c.created,
      status: s.status,
      statusText: statusText(s, Date.now(), health(c)),
      health: health(c)?.Status ?? null,
      restartCount: s.run?.restartCount ?? 0,
      pid: s.pid ?? 0,
      exitCode: s.exit?.exitCode ?? null,
      ip: getContainerNetwork(c.id, o)?.ip ?? null,
      ports: c.options.publish.map(formatPublish),
    }));
    stdout(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  }
  stdout(
    table(
      ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
      rows.map(({ c, s }) => [
        shortId(c.id),
        c.image.name ?? shortId(c.image.id),
        JSON.stringify(truncate(c.args.join(' '), 20)),
        ago(c.created),
        statusText(s, Date.now(), health(c)),
        ports(c).join(', '),
        c.name,
      ]),
    ),
  );
  return 0;
}
