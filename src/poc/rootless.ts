/**
 * poc for an ordinary user, as rootless podman: which mode poc is in, where its files go, and the user namespace
 * its store and containers live in. Pure rules here (table-tested); the system steps are in userns.ts.
 *
 * - The store (images, containers) is `$XDG_DATA_HOME/poc` (default ~/.local/share/poc), the runtime directory
 *   (pocrun's --root, console and slirp4netns sockets) `$XDG_RUNTIME_DIR/poc`, as podman's graphroot and runroot.
 * - Files of an image are owned as inside the user namespace that podman makes: root is the user, ids 1, 2, ...
 *   are the user's subordinate ids (/etc/subuid, /etc/subgid; src/subids.ts). Commands that write such files
 *   run again inside that namespace (as its root), and every container's monitor runs in one of its own, where it
 *   mounts the overlayfs and runs pocrun (which, root in a user namespace, runs rootless).
 */
import { PocError } from './errors.js';
import { rootlessMappings, type IdMapping, type SubidRange } from '../subids.js';
import type { CgroupOptions } from './containers/options.js';
import { cgroupfsParent } from './containers/cgroup-parent.js';
import { parsePastaOptions } from './network/pasta.js';
import { slicePath } from '../vocabulary/systemd-slice.js';

/** Set (to "1") in the environment of a poc running in its own user namespace: the command re-run, the monitor. */
export const USERNS_ENV = 'POC_USERNS';
/** The runtime directory, passed down to programs in the user namespace (where the uid is 0). */
export const RUN_DIR_ENV = 'POC_RUN_DIR';

export type Env = Record<string, string | undefined>;

/** Rootless: not root, or root only inside poc's user namespace. */
export function isRootless(env: Env, euid: number): boolean {
  return euid !== 0 || env[USERNS_ENV] === '1';
}

export const ROOT_STORE = '/var/lib/poc';

/** The default store: /var/lib/poc for root; `$XDG_DATA_HOME/poc`, else `$HOME/.local/share/poc`, for a user. */
export function defaultStoreRoot(env: Env, euid: number): string {
  if (!isRootless(env, euid)) return ROOT_STORE;
  const data = env.XDG_DATA_HOME?.startsWith('/') ? env.XDG_DATA_HOME : env.HOME?.startsWith('/') ? `${env.HOME.replace(/\/+$/, '')}/.local/share` : undefined;
  if (!data) throw new PocError('rootless poc needs $HOME or $XDG_DATA_HOME (an absolute path) for its store, or --root DIR');
  return `${data.replace(/\/+$/, '')}/poc`;
}

/**
 * The runtime directory: for root the store itself (pocrun's state in `<root>/runtime`, as before); for a user
 * `$XDG_RUNTIME_DIR/poc`, else, as podman falls back, `/tmp/poc-run-<uid>` (made private to the user).
 */
export function runDirFor(root: string, env: Env, euid: number): string {
  if (!isRootless(env, euid)) return root;
  if (env[RUN_DIR_ENV]?.startsWith('/')) return env[RUN_DIR_ENV]!;
  if (env.XDG_RUNTIME_DIR?.startsWith('/')) return `${env.XDG_RUNTIME_DIR.replace(/\/+$/, '')}/poc`;
  return `/tmp/poc-run-${euid}`;
}

/** Who the user namespace is for: the user's ids and subordinate ranges. */
export interface UsernsIdentity {
  name: string;
  uid: number;
  gid: number;
  subuids: SubidRange[];
  subgids: SubidRange[];
}

/** The uid and gid maps of poc's user namespace (podman's: root is the user, then the first subordinate range). */
export function usernsMappings(who: UsernsIdentity): { uid: IdMapping[]; gid: IdMapping[] } {
  // unshare(1) maps one range besides root, the first, as `unshare --map-auto` does.
  return { uid: rootlessMappings(who.uid, who.subuids.slice(0, 1)), gid: rootlessMappings(who.gid, who.subgids.slice(0, 1)) };
}

/**
 * The argv prefix that runs a program as root of a new user namespace with those maps (util-linux unshare, which
 * runs newuidmap and newgidmap for the subordinate range), with `mount`, in a mount namespace of its own too.
 * Without subordinate ranges only root is mapped (the single-id mapping; setgroups is then denied, as the kernel
 * requires).
 */
export function usernsArgv(who: UsernsIdentity, o: { mount: boolean }): string[] {
  const maps = usernsMappings(who);
  const argv = ['unshare', '--user', '--map-root-user'];
  const u = maps.uid[1];
  const g = maps.gid[1];
  if (u) argv.push(`--map-users=${u.hostID},${u.containerID},${u.size}`);
  if (g) argv.push(`--map-groups=${g.hostID},${g.containerID},${g.size}`);
  if (o.mount) argv.push('--mount', '--propagation', 'private');
  argv.push('--');
  return argv;
}

/**
 * Why an owner cannot be given in poc's user namespace (an import as root there), from its uid_map and gid_map
 * (/proc/self/uid_map's text): only root mapped means the user has no subordinate range.
 */
export function unmappedOwnerMessage(uid: number, gid: number, uidMap: string, gidMap: string): string {
  const highest = (text: string) =>
    Math.max(-1, ...text.trim().split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/).map(Number)).map(([inside, , count]) => inside! + count! - 1));
  const [u, g] = [highest(uidMap), highest(gidMap)];
  const what = `owner ${uid}:${gid} cannot be given in this user's namespace`;
  if (u <= 0 || g <= 0) {
    return `${what}: only root is mapped, as the user has no range in /etc/subuid and /etc/subgid (root can add one: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER)`;
  }
  return `${what}: it maps uids 0-${u} and gids 0-${g} (root, then the user's first range in /etc/subuid and /etc/subgid)`;
}

/** The network modes a rootless container may have; the others need root. */
export const ROOTLESS_NETWORKS = ['slirp4netns', 'pasta', 'none'] as const;

/** What a rootless container has instead of the bridge and a cgroup (stored in its options). */
export interface RootlessOptions {
  /** slirp4netns's allow_host_loopback: 10.0.2.2 in the container reaches the host's 127.0.0.1 (off by default, as podman). */
  allowHostLoopback: boolean;
  /**
   * The user has no subordinate ranges: only root is mapped, so mount options naming other ids (devpts's gid=5)
   * are left out, as runc's spec --rootless leaves them out.
   */
  singleId?: boolean;
  /** `--network pasta:OPT,...`: pasta(1)'s options, as given (checked by network/pasta.ts, planned at each start). */
  pastaOptions?: string[];
}

export interface RootlessNetwork {
  network: (typeof ROOTLESS_NETWORKS)[number];
  rootless: RootlessOptions;
  /** The container's cgroup: a scope of the user's own systemd, where it delegates one (see userDelegation). */
  cgroup?: CgroupOptions;
}

/**
 * What the user's own systemd (`systemd --user`, user@UID.service, started by logind for a login or a lingering
 * user) delegates to it on cgroup v2: the controllers of its subtree (cpu, memory and pids on Debian 12). A host
 * fact (userns.ts reads it); undefined where there is none (cgroup v1, no systemd, no user's bus).
 */
export interface UserDelegation {
  uid: number;
  controllers: readonly string[];
}

/** The controller each limit flag needs. */
const LIMIT_CONTROLLERS = [['-m', 'memory'], ['--cpus', 'cpu'], ['--pids-limit', 'pids']] as const;

/**
 * The flags of a rootless `poc run`/`create` that differ from root's: the network is slirp4netns (the default, with
 * podman's `slirp4netns:allow_host_loopback=true`), pasta (with pasta(1)'s options: `pasta:-t,8080`, network/pasta.ts) or
 * none; what needs root is refused, naming the flag. Cgroups, as rootless podman's two managers: where the user's
 * systemd delegates a subtree (`delegation`) the default is systemd, and every container gets a scope of it
 * (`user.slice:poc:<id>`, or in the slice --cgroup-parent names; pocrun --systemd-cgroup), with the limits whose
 * controller is delegated; with cgroupfs (the default elsewhere) a container gets a cgroup only below a
 * --cgroup-parent, which must be a cgroup the user owns (cgroupParentProblem checks it on the host), and none
 * otherwise. A limit that no cgroup can hold is refused, naming the flag and what is missing.
 */
export function parseRootlessFlags(
  f: { network?: string; memory?: string; cpus?: string; pidsLimit?: string; cgroupManager?: string; cgroupParent?: string },
  delegation?: UserDelegation,
): RootlessNetwork {
  const given = f.network ?? 'slirp4netns';
  const [mode, optText] = given.split(/:(.*)/s) as [string, string?];
  if (!(ROOTLESS_NETWORKS as readonly string[]).includes(mode)) {
    const why =
      mode === 'bridge'
        ? "the bridge pocbr0 and its nftables rules are the host's"
        : mode === 'host'
          ? "sharing the host's network namespace is not supported rootless yet"
          : 'networks of their own are the bridge\'s, which is the host\'s';
    throw new PocError(`--network ${given} needs root (${why}); a rootless container has slirp4netns (the default), pasta or none`);
  }
  const rootless: RootlessOptions = { allowHostLoopback: false };
  if (optText !== undefined && mode === 'pasta') {
    parsePastaOptions(optText);
    rootless.pastaOptions = optText.split(',');
  } else if (optText !== undefined) {
    if (mode !== 'slirp4netns') throw new PocError(`invalid --network ${JSON.stringify(given)}: ${mode} takes no options`);
    for (const opt of optText.split(',')) {
      const m = /^allow_host_loopback=(true|false)$/.exec(opt);
      if (!m) throw new PocError(`unsupported --network slirp4netns option ${JSON.stringify(opt)}: poc takes allow_host_loopback=true|false`);
      rootless.allowHostLoopback = m[1] === 'true';
    }
  }
  const network = mode as RootlessNetwork['network'];
  const values: Record<string, string | undefined> = { '-m': f.memory, '--cpus': f.cpus, '--pids-limit': f.pidsLimit };
  const manager = f.cgroupManager ?? (delegation ? 'systemd' : 'cgroupfs');
  if (manager !== 'systemd' && manager !== 'cgroupfs') throw new PocError(`invalid --cgroup-manager ${JSON.stringify(manager)}: use systemd or cgroupfs`);
  if (manager === 'cgroupfs') {
    // As rootless podman's cgroupfs manager: a cgroup only below a --cgroup-parent the user names, which must be
    // delegated to it (a cgroup it owns, in every hierarchy; checked on the host at create: cgroupParentProblem).
    if (f.cgroupParent === undefined) {
      for (const [flag, value] of Object.entries(values)) {
        if (value !== undefined) {
          throw new PocError(
            `${flag} needs a cgroup of the container's own, which a rootless container gets only from a cgroup delegated to the user: ${
              delegation ? 'a scope of its own systemd (--cgroup-manager systemd)' : "on this host none is (that takes cgroup v2 and the user's own systemd, for a login or after \"loginctl enable-linger USER\")"
            }, or below --cgroup-parent, a cgroup the user owns (give it with --cgroup-manager cgroupfs); or run it as root`,
          );
        }
      }
      return { network, rootless };
    }
    const parent = cgroupfsParent(f.cgroupParent);
    if (parent === undefined) {
      throw new PocError(`invalid --cgroup-parent ${JSON.stringify(f.cgroupParent)}: with the cgroupfs manager it is an absolute cgroup path, delegated to the user (a cgroup it owns)`);
    }
    return { network, rootless, cgroup: { manager: 'cgroupfs', parent } };
  }
  if (!delegation) {
    throw new PocError(
      `--cgroup-manager systemd: a rootless container's scope is the user's own systemd's, and on this host there is none to ask (that takes cgroup v2, systemd as the init and the user's bus: a login, or "loginctl enable-linger USER"); use --cgroup-manager cgroupfs with a --cgroup-parent the user owns`,
    );
  }
  for (const [flag, controller] of LIMIT_CONTROLLERS) {
    if (values[flag] !== undefined && !delegation.controllers.includes(controller)) {
      throw new PocError(
        `${flag} needs the ${controller} controller, which the user's systemd does not delegate (user@${delegation.uid}.service has ${delegation.controllers.join(' ') || 'none'}): run it as root, or have root delegate it (Delegate= in user@.service)`,
      );
    }
  }
  const slice = f.cgroupParent ?? 'user.slice';
  if (slicePath(slice) === undefined) {
    throw new PocError(`invalid --cgroup-parent ${JSON.stringify(slice)}: with the systemd cgroup manager it is a slice of the user's systemd, such as user.slice`);
  }
  return { network, rootless, cgroup: { manager: 'systemd', parent: slice, user: delegation.uid } };
}
