/**
 * What `up` does to each service (pure), as docker compose decides it: no container yet → create; a container
 * whose config hash or image differs from the service's now (or --force-recreate) → recreate; the same one
 * stopped → start; the same one running → leave it. Containers of services the files no longer have are
 * orphans (removed with --remove-orphans, else named in a warning).
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
