/**
 * `poc port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's published ports as docker prints them, the
 * ephemeral ones (`-p 80`) with the host port poc picked.
 */
import { stdout } from '../../common/output.js';
import { PocError } from '../errors.js';
import { resolveContainer } from '../containers/container-store.js';
import type { PortMapping } from '../network/publish.js';
import type { RootOptions } from '../poc-root.js';

export interface PortOptions extends RootOptions {
  ref: string;
  /** `80` or `80/udp` (tcp when the protocol is left out, as docker's). */
  privatePort?: string;
}

/**
 * Pure: docker's lines, `80/tcp -> 0.0.0.0:32768` for each mapping, or with a private port only its host
 * addresses (`0.0.0.0:32768`); a private port that is not published is an error naming it.
 */
export function portLines(publish: readonly PortMapping[], name: string, privatePort?: string): string[] {
  const host = (p: PortMapping) => `${p.hostIp ?? '0.0.0.0'}:${p.hostPort}`;
  if (privatePort === undefined) return publish.map((p) => `${p.containerPort}/${p.protocol} -> ${host(p)}`);
  const m = /^(\d+)(?:\/(tcp|udp))?$/i.exec(privatePort.trim());
  if (!m) throw new PocError(`invalid port ${JSON.stringify(privatePort)}: use PORT or PORT/tcp|udp`);
  const proto = (m[2] ?? 'tcp').toLowerCase();
  const found = publish.filter((p) => p.containerPort === Number(m[1]) && p.protocol === proto);
  if (found.length === 0) throw new PocError(`no public port ${m[1]}/${proto} published for ${name}`);
  return found.map(host);
}

export async function portCommand(o: PortOptions): Promise<number> {
  const c = resolveContainer(o.ref, o);
  const lines = portLines(c.options.publish, c.name, o.privatePort);
  if (lines.length > 0) stdout(`${lines.join('\n')}\n`);
  return 0;
}
