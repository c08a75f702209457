/**
 * `up --wait`: once every container is up, wait until each service is running, or healthy where it has a
 * health check; a service another depends on with `service_completed_successfully` until it has exited 0. As
 * docker compose's (pkg/compose/start.go, convergence.go): a container that exited, or turned unhealthy, fails
 * the wait at once, naming it; `--wait-timeout` bounds the whole wait. The verdict on one look at the
 * containers is pure (waitVerdict); the loop reads their state.
 */
import { PocError } from '../errors.js';
import { containerStatus, readHealth, type ContainerRecord, type ContainerStatus } from '../containers/container-store.js';
import type { RootOptions } from '../poc-root.js';
import { serviceScale, type Project } from './model.js';

export type WaitGoal = 'running_or_healthy' | 'completed_successfully';

export interface WaitState {
  service: string;
  goal: WaitGoal;
  /** Absent: the service has no container. */
  name?: string;
  status?: ContainerStatus['status'];
  hasHealthcheck?: boolean;
  /** starting, healthy or unhealthy. */
  health?: string;
  exitCode?: number;
}

/** A service waited for this way: one that another needs to have completed, as docker compose's getDependencyCondition. */
export function waitGoal(p: Pick<Project, 'services'>, service: string): WaitGoal {
  const completed = Object.values(p.services).some((s) => s.dependsOn[service]?.condition === 'service_completed_successfully');
  return completed ? 'completed_successfully' : 'running_or_healthy';
}

export interface Verdict {
  /** The containers ready (a service's several each by name). */
  ready: string[];
  /** Each service still waited for, with what it is now ("starting", "created", ...). */
  waiting: Array<{ service: string; now: string }>;
  /** The first failure: the wait is over. */
  error?: string;
}

export function waitVerdict(states: readonly WaitState[]): Verdict {
  const v: Verdict = { ready: [], waiting: [] };
  for (const s of states) {
    if (!s.name || !s.status) {
      v.error ??= `service ${s.service} has no container`;
      continue;
    }
    const code = s.exitCode ?? 'unknown';
    if (s.goal === 'completed_successfully') {
      if (s.status !== 'exited') v.waiting.push({ service: s.service, now: s.status });
      else if (s.exitCode === 0) v.ready.push(s.name);
      else v.error ??= `service ${s.service} didn't complete successfully: container ${s.name} exited (${code})`;
      continue;
    }
    if (s.status === 'exited') v.error ??= `service ${s.service}: container ${s.name} exited (${code})`;
    else if (s.status !== 'running') v.waiting.push({ service: s.service, now: s.status });
    else if (!s.hasHealthcheck || s.health === 'healthy') v.ready.push(s.name);
    else if (s.health === 'unhealthy') v.error ??= `service ${s.service}: container ${s.name} is unhealthy`;
    else v.waiting.push({ service: s.service, now: s.health ?? 'starting' });
  }
  return v;
}

function stateOf(service: string, goal: WaitGoal, c: ContainerRecord | undefined, o: RootOptions): WaitState {
  if (!c) return { service, goal };
  const s = containerStatus(c.id, o);
  // A health check of NONE is none.
  const hasHealthcheck = Boolean(c.healthcheck && c.healthcheck.Test?.[0] !== 'NONE');
  return {
    service,
    goal,
    name: c.name,
    status: s.status,
    hasHealthcheck,
    ...(hasHealthcheck ? { health: readHealth(c.id, o)?.Status ?? 'starting' } : {}),
    ...(s.exit ? { exitCode: s.exit.exitCode } : {}),
  };
}

export interface WaitOptions extends RootOptions {
  /** Seconds; 0 or absent: no bound. */
  timeout?: number;
  /** Each service once it is ready (the progress line). */
  onReady?: (service: string, container: string) => void;
  /** Between looks, in ms (docker compose's 500). */
  interval?: number;
}

/** `find`: a service's containers (none for a service scaled to 0, which is not waited for, as compose's). */
export async function waitForServices(p: Pick<Project, 'services'>, services: string[], find: (service: string) => ContainerRecord[], o: WaitOptions): Promise<void> {
  const deadline = o.timeout ? Date.now() + o.timeout * 1000 : Infinity;
  const announced = new Set<string>();
  const interval = o.interval ?? 500;
  for (;;) {
    // The first look after one interval too, as docker compose's ticker: a service that dies at once (a bad
    // configuration, a missing file) is seen exited, not passed as running in the moment after its start.
    await new Promise((r) => setTimeout(r, Math.min(interval, Math.max(0, deadline - Date.now()))));
    const states = services.filter((s) => serviceScale(p.services[s]!) > 0).flatMap((s) => {
      const cs = find(s);
      return cs.length === 0 ? [stateOf(s, waitGoal(p, s), undefined, o)] : cs.map((c) => stateOf(s, waitGoal(p, s), c, o));
    });
    const v = waitVerdict(states);
    for (const name of v.ready) {
      if (announced.has(name)) continue;
      announced.add(name);
      o.onReady?.(states.find((x) => x.name === name)!.service, name);
    }
    if (v.error) throw new PocError(v.error);
    if (v.waiting.length === 0) return;
    if (Date.now() >= deadline) {
      throw new PocError(`application not healthy after ${o.timeout}s: still waiting for ${v.waiting.map((w) => `${w.service} (${w.now})`).join(', ')}`);
    }
  }
}
