import { existsSync } from 'node:fs';
import { isSameLiveProcess } from '../common/proc.js';
import type { ContainerRecord } from './state-store.js';
import type { RuntimeContext } from './context.js';
import { OCI_STATE_FIELDS, STATUS_RULE, type OciStateField, type Status, type StatusFact, type StatusRule } from '../vocabulary/state-record.js';

/** How to learn each fact the status rule reads; asked only when the rule comes to it. */
export type StatusFacts = { readonly [F in StatusFact]: () => boolean };

/**
 * runc's ErrNotRunning text, which engines match in a kill's error to mean "already gone" rather than a failure:
 * containerd's runc shim (pkg/process/utils.go, checkKillError: "container not running" → ErrNotFound, which its
 * CRI plugin's stop and exit handling accept) and CRI-O (internal/oci/runtime_oci.go, runtimeCmd: "container not
 * running" → ErrNotFound). Every "not running" refusal carries it.
 */
export const NOT_RUNNING = 'container not running';

/** The status by the rule in src/vocabulary/state-record.ts, which the native front's status_of is generated from. */
export function deriveStatus(facts: StatusFacts, rule: StatusRule = STATUS_RULE): Status {
  for (const row of rule.rows) if (facts[row.fact]() === row.is) return row.status;
  return rule.otherwise;
}

/** What a container's status is learned from: its state directory, and the cgroup's freezer when the rule asks. */
export type StatusSource = Pick<RuntimeContext, 'store' | 'cgroups'>;

/**
 * The status rule's initAlive: the record's pid is its init still (alive, not a zombie, started when the record
 * says: not a reused pid). Commands that signal the init ask it too, since a paused container's may be gone.
 */
export function initAlive(record: Pick<ContainerRecord, 'pid' | 'initStartTime'>): boolean {
  return record.pid > 0 && isSameLiveProcess(record.pid, record.initStartTime);
}

export function containerStatus({ store, cgroups }: StatusSource, record: ContainerRecord): Status {
  return deriveStatus({
    initReported: () => record.pid !== 0,
    initAlive: () => initAlive(record),
    frozen: () => {
      try {
        return cgroups().state(record.cgroupPath) !== 'thawed';
      } catch {
        return false;
      }
    },
    execFifoExists: () => existsSync(store.fifoPath(record.id)),
  });
}

/**
 * How the commands that change a container (pause, resume, start, update, checkpoint, delete) begin: its lock,
 * then its record and its status as they are while the lock is held, then `act`; the lock goes when `act`
 * returns or throws. A missing container is Store's error (`container "ID" does not exist`, from the lock when
 * its directory is gone, from the read when its state.json is). With `whenGone`, a container that is gone, or
 * goes while the lock is awaited, is `whenGone`'s answer instead (delete --force). state, kill and events take
 * no lock: they read the record and derive its status (containerStatus); exec takes the lock itself, since it
 * lets it go early for --ignore-paused.
 */
export function withLockedContainer<T>(
  ctx: RuntimeContext,
  id: string,
  act: (record: ContainerRecord, status: Status) => T,
  opts: { whenGone?: () => T } = {},
): T {
  const { whenGone } = opts;
  let unlock: () => void;
  try {
    unlock = ctx.store.lock(id);
  } catch (err) {
    if (whenGone && !ctx.store.exists(id)) return whenGone();
    throw err;
  }
  try {
    if (whenGone && !ctx.store.exists(id)) return whenGone();
    const record = ctx.store.read(id);
    return act(record, containerStatus(ctx, record));
  } finally {
    unlock();
  }
}

/**
 * The OCI state (state-schema.json) with runc's extra fields, which engines read. While creating, the pid is
 * given once the init exists: prestart and createRuntime hooks need it (network setup joins /proc/<pid>/ns/net),
 * as runc passes it.
 */
export function ociState(record: ContainerRecord, status: Status): Record<string, unknown> {
  const value = (field: OciStateField) => (field === 'status' ? status : field === 'pid' && status === 'stopped' ? 0 : record[field]);
  // In OCI_STATE_FIELDS' order, which the native front prints too.
  const state: Record<string, unknown> = Object.fromEntries(OCI_STATE_FIELDS.map((field) => [field, value(field)]));
  if (record.annotations && Object.keys(record.annotations).length) state.annotations = record.annotations;
  return state;
}
