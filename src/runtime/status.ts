import { existsSync } from 'node:fs';
import type { CgroupDriver } from '../cgroups/index.js';
import { isSameLiveProcess } from '../common/proc.js';
import type { ContainerRecord, Store } from './state-store.js';
import { OCI_STATE_FIELDS, type OciStateField, type Status } from '../vocabulary/state-record.js';

export interface StatusFacts {
  /** pid 0 means the init was never reported: create did not finish. */
  pid: number;
  alive: boolean;
  fifoExists: boolean;
  frozen: boolean;
}

/**
 * runc's ErrNotRunning text, which engines match in a kill's error to mean "already gone" rather than a failure:
 * containerd's runc shim (pkg/process/utils.go, checkKillError: "container not running" → ErrNotFound, which its
 * CRI plugin's stop and exit handling accept) and CRI-O (internal/oci/runtime_oci.go, runtimeCmd: "container not
 * running" → ErrNotFound). Every "not running" refusal carries it.
 */
export const NOT_RUNNING = 'container not running';

/** The status is derived, never stored: a stored one would be wrong the moment the init exits. */
export function deriveStatus(f: StatusFacts): Status {
  if (f.pid === 0) return 'creating';
  if (!f.alive) return 'stopped';
  if (f.frozen) return 'paused';
  return f.fifoExists ? 'created' : 'running';
}

export function containerStatus(store: Store, record: ContainerRecord, cgroups: () => CgroupDriver): Status {
  const alive = record.pid > 0 && isSameLiveProcess(record.pid, record.initStartTime);
  let frozen = false;
  if (alive) {
    try {
      frozen = cgroups().state(record.cgroupPath) !== 'thawed';
    } catch {
      frozen = false;
    }
  }
  return deriveStatus({ pid: record.pid, alive, fifoExists: existsSync(store.fifoPath(record.id)), frozen });
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
