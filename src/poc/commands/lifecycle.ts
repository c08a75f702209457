/** `poc start`, `poc stop [-t SECS]`, `poc kill [-s SIG]`, `poc rm [-f]`, `poc wait`: names or id prefixes. */
import { stdout } from '../../common/output.js';
import { startContainer } from '../containers/start.js';
import { PocError } from '../errors.js';
import { killContainer, removeContainer, stopContainer, waitContainer, WAIT_CONDITIONS, type WaitCondition } from '../containers/stop.js';
import { resolveContainer, type ContainerRecord } from '../containers/container-store.js';
import type { RootOptions } from '../poc-root.js';
import { forEachRef } from './each.js';

export interface RefsOptions extends RootOptions {
  refs: string[];
}

/** Acts on each container named (forEachRef: past a failure, to the next), printing the name as given once done, as docker does. */
function eachContainer(o: RefsOptions, act: (c: ContainerRecord) => Promise<unknown>): Promise<number> {
  return forEachRef(o.refs, async (ref) => {
    await act(resolveContainer(ref, o));
    stdout(`${ref}\n`);
  });
}

export async function startCommand(o: RefsOptions & { checkpoint?: string }): Promise<number> {
  if (o.checkpoint !== undefined && o.refs.length > 1) throw new PocError('start --checkpoint: one container at a time');
  return eachContainer(o, (c) => startContainer(c, o));
}

export interface StopCommandOptions extends RefsOptions {
  /** Unset: the container's --stop-timeout, or 10. */
  timeout?: number;
}

export async function stopCommand(o: StopCommandOptions): Promise<number> {
  return eachContainer(o, (c) => stopContainer(c, o));
}

export interface KillCommandOptions extends RefsOptions {
  signal: string;
}

export async function killCommand(o: KillCommandOptions): Promise<number> {
  return eachContainer(o, (c) => killContainer(c, o.signal, o));
}

export interface RmCommandOptions extends RefsOptions {
  force: boolean;
  volumes?: boolean;
}

export async function rmCommand(o: RmCommandOptions): Promise<number> {
  return eachContainer(o, (c) => removeContainer(c, o));
}

export interface WaitCommandOptions extends RefsOptions {
  condition?: string;
}

export async function waitCommand(o: WaitCommandOptions): Promise<number> {
  const condition = (o.condition ?? 'not-running') as WaitCondition;
  if (!WAIT_CONDITIONS.includes(condition)) throw new PocError(`wait: invalid --condition ${JSON.stringify(o.condition)}: use ${WAIT_CONDITIONS.join(', ')}`);
  return forEachRef(o.refs, async (ref) => {
    stdout(`${await waitContainer(resolveContainer(ref, o), o, condition)}\n`);
  });
}
