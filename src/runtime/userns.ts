import { writeFileSync } from 'node:fs';
import type { Spec } from '../spec/generated/config.js';
import { PocrunError, wrapError } from '../errors.js';
import { idMapText } from '../plan/namespaces.js';
import { egid, euid } from './rootless.js';

type IdMap = { containerID: number; hostID: number; size: number };

/**
 * How one map gets written (pure). Root writes it itself. So does an unprivileged user whose map is one id, its
 * own (the kernel allows that much; for gid_map only after setgroups is denied). Any other map of an
 * unprivileged user goes through the setuid helper (newuidmap, newgidmap: Debian's uidmap package), which
 * checks the ranges against /etc/subuid and /etc/subgid, as runc does.
 */
export function idMapMethod(maps: readonly IdMap[] | undefined, ownId: number, isRoot: boolean): 'direct' | 'helper' {
  if (isRoot) return 'direct';
  return maps?.length === 1 && maps[0]!.hostID === ownId && maps[0]!.size === 1 ? 'direct' : 'helper';
}

/**
 * The maps a helper that makes the user namespace itself (`--new-userns`) may write for itself, without the
 * runtime's round trip (`--own-maps`): an unprivileged user's maps that are each only its own id. Else undefined.
 */
export function ownMaps(spec: Spec, uid = euid(), gid = egid()): [uidMap: string, gidMap: string] | undefined {
  const { uidMappings, gidMappings } = spec.linux ?? {};
  if (uid === 0 || idMapMethod(uidMappings, uid, false) !== 'direct' || idMapMethod(gidMappings, gid, false) !== 'direct') return undefined;
  return [idMapText(uidMappings), idMapText(gidMappings)];
}

/** Written by the runtime between the helper's sync points, while the new user namespace waits for them. */
export function writeIdMaps(pid: number, spec: Spec): void {
  const isRoot = euid() === 0;
  writeMap(pid, 'uid', spec.linux?.uidMappings, idMapMethod(spec.linux?.uidMappings, euid(), isRoot));
  writeMap(pid, 'gid', spec.linux?.gidMappings, idMapMethod(spec.linux?.gidMappings, egid(), isRoot));
}

function writeMap(pid: number, kind: 'uid' | 'gid', maps: readonly IdMap[] | undefined, method: 'direct' | 'helper'): void {
  const field = `config.json /linux/${kind}Mappings`;
  if (method === 'direct') {
    try {
      // An unprivileged writer may map its own gid only once setgroups(2) is denied in the namespace (it could
      // otherwise drop a group that denies it access). Root leaves it allowed.
      if (kind === 'gid' && euid() !== 0) writeFileSync(`/proc/${pid}/setgroups`, 'deny');
      writeFileSync(`/proc/${pid}/${kind}_map`, idMapText(maps));
    } catch (err) {
      throw wrapError(`${field}: write ${kind}_map`, err);
    }
    return;
  }
  const tool = `new${kind}map`;
  const args = [String(pid), ...(maps ?? []).flatMap((m) => [m.containerID, m.hostID, m.size].map(String))];
  // Loaded only here: node:child_process costs every create ~0.2 MB and, in an emulated guest, tens of
  // milliseconds to load; only a rootless map of more than the user's own id runs newuidmap.
  const { spawnSync } = process.getBuiltinModule('node:child_process');
  const r = spawnSync(tool, args, { encoding: 'utf8' });
  const file = kind === 'uid' ? '/etc/subuid' : '/etc/subgid';
  if (r.error) {
    throw new PocrunError(
      `${field}: rootless: mapping more than this user's own ${kind} needs ${tool} (Debian's uidmap package) and ranges in ${file}: ${r.error.message}`,
    );
  }
  if (r.status !== 0) {
    const said = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().replace(/\s+/g, ' ');
    throw new PocrunError(
      `${field}: rootless: ${tool} ${args.join(' ')} failed (exit status ${r.status}${said ? `: ${said}` : ''}); the ranges must be this user's in ${file}, or the map only the user's own ${kind}`,
    );
  }
}
