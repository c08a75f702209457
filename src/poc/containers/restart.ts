/**
 * `--restart no|on-failure[:N]|always|unless-stopped` (pure). The policy is carried out by the container's
 * monitor (src/native/poc-monitor.c), which decides after each exit and waits docker's growing back-off.
 */
import { PocError } from '../errors.js';

export type RestartPolicyName = 'no' | 'always' | 'on-failure' | 'unless-stopped';

/** docker inspect's HostConfig.RestartPolicy. */
export interface RestartPolicy {
  Name: RestartPolicyName;
  /** on-failure only: at most this many restarts (0: no limit). */
  MaximumRetryCount: number;
}

export function parseRestart(text: string): RestartPolicy {
  const m = /^(no|always|on-failure|unless-stopped)(?::(.*))?$/.exec(text);
  if (!m) throw new PocError(`invalid --restart ${JSON.stringify(text)}: use no, on-failure[:N], always or unless-stopped`);
  const name = m[1] as RestartPolicyName;
  if (m[2] === undefined) return { Name: name, MaximumRetryCount: 0 };
  if (name !== 'on-failure') throw new PocError(`invalid --restart ${JSON.stringify(text)}: a maximum retry count goes only with on-failure`);
  if (!/^\d+$/.test(m[2]) || Number(m[2]) > 2 ** 31 - 1) throw new PocError(`invalid --restart ${JSON.stringify(text)}: the maximum retry count is a whole number`);
  return { Name: name, MaximumRetryCount: Number(m[2]) };
}

/** The monitor's flags for a policy (none for "no"). */
export function restartMonitorArgs(p: RestartPolicy | undefined): string[] {
  if (!p || p.Name === 'no') return [];
  return ['--restart', p.Name, '--restart-max', String(p.MaximumRetryCount)];
}
