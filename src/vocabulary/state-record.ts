/**
 * A container's state directory, `<root>/<id>/`, as the TypeScript program (runtime/state-store.ts, status.ts) and
 * the native front (front/container.c, which answers state, start, kill and delete from it) both read it. The C
 * names come from here (scripts/gen-native.ts writes them into src/native/generated/state-record.h).
 */

/** The files in it: the record (written whole with tmp + rename), the commands' lock, and the fifo create leaves. */
export const STATE_FILES = { record: 'state.json', lock: 'lock', execFifo: 'exec.fifo' } as const;

/**
 * The OCI state's fields that `pocrun state` prints and hooks get, in this order (then `annotations` when there
 * are any): runtime/status.ts builds the object in it, the front prints it, and the two must be the same bytes.
 */
export const OCI_STATE_FIELDS = ['ociVersion', 'id', 'status', 'pid', 'bundle', 'rootfs', 'created', 'owner'] as const;
export type OciStateField = (typeof OCI_STATE_FIELDS)[number];

/**
 * The record's other fields that the front reads (state-store.ts's ContainerRecord has them; its type is checked
 * against this list).
 */
export const FRONT_RECORD_FIELDS = ['pid', 'initStartTime', 'cgroupDirs', 'hooks', 'systemd', 'sharedMounts', 'annotations'] as const;

/** The statuses: derived when read, by STATUS_RULE, never stored (a stored one is wrong once the init exits). */
export const STATUSES = ['creating', 'created', 'running', 'paused', 'stopped'] as const;
export type Status = (typeof STATUSES)[number];

/**
 * What the status rule reads: each a yes or no about the container as it is now, which both sides answer from the
 * record, /proc and the cgroup (status.ts containerStatus; container.c, a function fact_<snake_case name> each).
 */
export const STATUS_FACTS = {
  initReported: "the record has the init's pid (pid 0: create has not got as far as reporting it)",
  initAlive: 'that pid is the init still: alive, not a zombie, started when the record says (not a reused pid)',
  frozen: "the container's cgroup is frozen or freezing (no freezer: thawed)",
  execFifoExists: 'exec.fifo is still in the state directory: start has not released the init',
} as const;
export type StatusFact = keyof typeof STATUS_FACTS;

export interface StatusRule {
  /** In order: the first whose fact is as given decides. */
  readonly rows: readonly { readonly fact: StatusFact; readonly is: boolean; readonly status: Status }[];
  /** The status when no row decides. */
  readonly otherwise: Status;
}

/**
 * The status rule, one definition for both sides: the first row whose fact is as given decides, and the facts of
 * later rows are not read. After `creating` (pocrun's own: no pid to look at yet) the order is runc's
 * (libcontainer's refreshState): the freezer first, so a frozen cgroup is paused whether or not its init still
 * lives (cgroup v2 lets a fatal signal kill a frozen task; on v1 a cgroup can be frozen after its init died), then
 * a dead init is stopped, then exec.fifo tells created from running. A paused container whose init is gone is
 * what runc makes of it: delete refuses it without --force, kill says "container not running", resume thaws it
 * (and it reads stopped). As with runc, a frozen container that was never started is paused, not created. The
 * TypeScript side walks the rows (status.ts, deriveStatus); the C side is generated from them
 * (scripts/gen-native.ts writes src/native/generated/status-rule.h, which container.c includes).
 */
export const STATUS_RULE: StatusRule = {
  rows: [
    { fact: 'initReported', is: false, status: 'creating' },
    { fact: 'frozen', is: true, status: 'paused' },
    { fact: 'initAlive', is: false, status: 'stopped' },
    { fact: 'execFifoExists', is: true, status: 'created' },
  ],
  otherwise: 'running',
};

/** A lock file's content: the holder's pid and its start time (/proc/<pid>/stat field 22), so a stale one is told. */
export function lockHolder(pid: number, startTime: string): string {
  return `${pid} ${startTime}`;
}
