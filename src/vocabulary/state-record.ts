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

/**
 * The statuses. Derived, never stored, by one rule both sides follow (status.ts deriveStatus, container.c
 * status_of): pid 0 is `creating`; an init that is gone (or a reused pid) `stopped`; a frozen cgroup `paused`;
 * exec.fifo still there `created`; else `running`.
 */
export const STATUSES = ['creating', 'created', 'running', 'paused', 'stopped'] as const;
export type Status = (typeof STATUSES)[number];

/** A lock file's content: the holder's pid and its start time (/proc/<pid>/stat field 22), so a stale one is told. */
export function lockHolder(pid: number, startTime: string): string {
  return `${pid} ${startTime}`;
}
