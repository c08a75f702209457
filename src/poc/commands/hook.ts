/**
 * Hidden commands that poc's own machinery calls:
 *   poc hook network setup|teardown   OCI hooks in config.json, the container state on stdin
 *   poc cleanup ID                      the monitor's exit command when a container's init exited
 */
import { PocError } from '../errors.js';
import { cleanupContainer } from '../containers/stop.js';
import { runNetworkHook } from '../network/index.js';
import { readFileSync } from 'node:fs';
import type { RootOptions } from '../poc-root.js';

export interface HookOptions extends RootOptions {
  kind: string;
  action: string;
}

export async function hookCommand(o: HookOptions): Promise<number> {
  if (o.kind !== 'network') throw new PocError(`hook: unknown kind ${JSON.stringify(o.kind)}`);
  // Synchronously from fd 0: process.stdin builds a stream, which costs more than the hook's own work.
  const input = readFileSync(0, 'utf8');
  if (o.action === 'setup' || o.action === 'teardown') {
    await runNetworkHook(o.action, input, o);
  } else {
    throw new PocError(`hook: unknown network action ${JSON.stringify(o.action)}`);
  }
  return 0;
}

export interface CleanupOptions extends RootOptions {
  id: string;
}

export async function cleanupCommand(o: CleanupOptions): Promise<number> {
  await cleanupContainer(o.id, o);
  return 0;
}
