/**
 * What `up` does to each service's containers (pure), as docker compose decides it (pkg/compose/convergence.go):
 * no container yet → create; a container whose config hash or image differs from the service's now (or
 * --force-recreate) → recreate; the same one stopped → start; the same one running → leave it. With several
 * (deploy.replicas, --scale): the up-to-date ones with the lowest numbers are kept, the outdated ones and then
 * the highest numbers are removed when there are too many, and new ones are numbered on from the highest.
 * Containers of services the files no longer have are orphans (removed with --remove-orphans, else named in
 * a warning).
 */
import { LABELS } from './plan.js';

export interface ExistingContainer {
  id: string;
  name: string;
  labels: Record<string, string>;
  imageId: string;
  running: boolean;
}

export type Action = 'create' | 'recreate' | 'start' | 'keep';

export interface Desired {
  service: string;
  configHash: string;
  imageId: string;
}

export function decide(d: Desired, existing: ExistingContainer | undefined, o: { forceRecreate?: boolean; noRecreate?: boolean } = {}): Action {
  if (!existing) return 'create';
  const changed = existing.labels[LABELS.configHash] !== d.configHash || existing.imageId !== d.imageId;
  if ((changed || o.forceRecreate) && !o.noRecreate) return 'recreate';
  return existing.running ? 'keep' : 'start';
}

/** The project's containers (not one-off `run` ones) of services that are not in the files any more. */
export function orphans(existing: ExistingContainer[], services: string[]): ExistingContainer[] {
  return existing.filter((c) => c.labels[LABELS.oneoff] !== 'True' && !services.includes(c.labels[LABELS.service] ?? ''));
}

/** A container's number (com.docker.compose.container-number); 0 when it has none. */
export function containerNumber(c: Pick<ExistingContainer, 'labels'>): number {
  const n = Number(c.labels[LABELS.number]);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

export interface Convergence {
  /** The containers kept, lowest number first, each with what happens to it. */
  kept: Array<{ container: ExistingContainer; action: Exclude<Action, 'create'> }>;
  /** Too many: the outdated ones first, then the highest numbers. */
  removed: ExistingContainer[];
  /** The numbers of the containers to make. */
  created: number[];
}

export function converge(d: Desired, existing: ExistingContainer[], want: number, o: { forceRecreate?: boolean; noRecreate?: boolean } = {}): Convergence {
  const outdated = (c: ExistingContainer) => decide(d, c, o) === 'recreate';
  const order = [...existing].sort((a, b) => Number(outdated(a)) - Number(outdated(b)) || containerNumber(a) - containerNumber(b) || a.name.localeCompare(b.name));
  const kept = order.slice(0, want).sort((a, b) => containerNumber(a) - containerNumber(b));
  const next = Math.max(0, ...existing.map(containerNumber)) + 1;
  return {
    kept: kept.map((container) => ({ container, action: decide(d, container, o) as Exclude<Action, 'create'> })),
    removed: order.slice(want),
    created: Array.from({ length: Math.max(0, want - existing.length) }, (_, i) => next + i),
  };
}
