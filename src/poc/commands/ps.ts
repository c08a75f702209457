/** `poc ps [-a] [--format json]`: running containers (all with -a), newest first. */
import { stdout } from '../../cli/output.js';
import { formatPublish, getContainerNetwork } from '../network/index.js';
import { containerStatus, listContainers, type ContainerRecord, type ContainerStatus } from '../containers/store.js';
import { shortId, type RootOptions } from '../store.js';
import { ago, humanDuration, table, truncate } from './format.js';

export interface PsOptions extends RootOptions {
  all: boolean;
  /** Only the ids (full ones: they are for scripts). */
  quiet?: boolean;
  format: 'table' | 'json';
}

/** "Up 5 seconds", "Exited (0) 3 minutes ago", "Created", as docker words it. */
export function statusText(s: ContainerStatus, now = Date.now()): string {
  if (s.status === 'created') return 'Created';
  if (s.status === 'running') return `Up ${humanDuration(now - Date.parse(s.run!.startedAt))}`;
  if (s.exit) return `Exited (${s.exit.exitCode}) ${ago(s.exit.finishedAt, now)}`;
  return 'Exited (unknown)';
}

export function psCommand(o: PsOptions): number {
  const rows = listContainers(o)
    .map((c) => ({ c, s: containerStatus(c.id, o) }))
    .filter(({ s }) => o.all || s.status === 'running');
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
      statusText: statusText(s),
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
        statusText(s),
        ports(c).join(', '),
        c.name,
      ]),
    ),
  );
  return 0;
}
