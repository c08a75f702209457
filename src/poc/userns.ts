/**
 * The system side of rootless poc (the rules are in rootless.ts): the user's identity and ranges, running a
 * program or poc itself in the user namespace, and removing trees that hold files of the user's subordinate ids.
 */
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { userInfo } from 'node:os';
import { PocError, errnoCode } from './errors.js';
import { SUBGID_FILE, SUBUID_FILE, readSubids } from '../subids.js';
import { RUN_DIR_ENV, USERNS_ENV, isRootless, usernsArgv, type UserDelegation, type UsernsIdentity } from './rootless.js';
import { managerCgroup, systemdRunning, userBusProblem } from '../common/systemd.js';
import { cgroupDirsOf } from '../common/cgroup-mounts.js';
import { runProgram, spawnProgram } from './spawn.js';

const euid = (): number => process.geteuid?.() ?? 0;

/** Rootless poc (this process). */
export function rootless(): boolean {
  return isRootless(process.env, euid());
}

/** Already root in poc's user namespace (a re-run command, the monitor's children). */
export function inPocUserns(): boolean {
  return process.env[USERNS_ENV] === '1';
}

let identity: UsernsIdentity | undefined;

/** The calling user and its subordinate ranges. */
export function userIdentity(): UsernsIdentity {
  if (!identity) {
    const u = userInfo();
    const name = u.username;
    identity = {
      name,
      uid: u.uid,
      gid: u.gid,
      subuids: readSubids(SUBUID_FILE, { name, id: u.uid }),
      subgids: readSubids(SUBGID_FILE, { name, id: u.gid }),
    };
  }
  return identity;
}

/**
 * What the user's own systemd delegates to it (rootless.ts, UserDelegation): on cgroup v2 with systemd as the init,
 * the user's bus there (common/systemd.ts's userBusProblem, the rule pocrun --systemd-cgroup goes by too), and
 * the controllers of user@UID.service's cgroup; undefined otherwise.
 */
export function userDelegation(env: NodeJS.ProcessEnv = process.env, fsRoot = '/sys/fs/cgroup'): UserDelegation | undefined {
  if (!systemdRunning() || !existsSync(`${fsRoot}/cgroup.controllers`)) return undefined;
  if (userBusProblem(env)) return undefined;
  const uid = euid();
  try {
    const controllers = readFileSync(`${fsRoot}${managerCgroup(uid)}/cgroup.controllers`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return { uid, controllers };
  } catch {
    return undefined;
  }
}

/**
 * Why the user cannot make a container's cgroup below `parent` with the cgroupfs manager, or undefined where it
 * can: the parent must be in every hierarchy pocrun makes a cgroup in (its driver's dirs), writable by the user, as
 * root delegates one by giving it to the user (chown); the hierarchies are those pocrun's driver uses (cgroupDirsOf). pocrun itself is the judge of the rest (a controller that
 * is not enabled there, a limit the kernel refuses), naming the config field.
 */
export function cgroupParentProblem(parent: string): string | undefined {
  for (const dir of cgroupDirsOf(parent)) {
    try {
      accessSync(dir, constants.W_OK);
    } catch (err) {
      return `${dir}: ${errnoCode(err) === 'ENOENT' ? 'no such cgroup' : 'not writable by this user'}`;
    }
  }
  return undefined;
}

/** The environment of a program in the user namespace: it knows it is rootless although its uid is 0. */
export function usernsEnv(env: NodeJS.ProcessEnv, runDir: string): NodeJS.ProcessEnv {
  return { ...env, [USERNS_ENV]: '1', [RUN_DIR_ENV]: runDir };
}

/** The argv that runs `argv` as root of a fresh user namespace (and, with `mount`, mount namespace). */
export function inUserns(argv: string[], o: { mount: boolean }): string[] {
  return [...usernsArgv(userIdentity(), o), ...argv];
}

/**
 * Runs poc's own command line again inside the user namespace, with the terminal, and returns its status: the
 * commands that write the store's files (import, init, rmi, prune) need to own them as the namespace does.
 */
export async function rerunInUserns(pocBinary: string, argv: string[], o: { root: string; runDir: string }): Promise<number> {
  const env = usernsEnv({ ...process.env, POC_ROOT: o.root }, o.runDir);
  delete env.POC_PROGRAM;
  const p = spawnProgram(inUserns([pocBinary, ...argv], { mount: false }), { stdio: ['inherit', 'inherit', 'inherit'], env });
  return p.exited;
}

/**
 * Makes the runtime directory, private to the user; one that exists must be the user's (the fallback in /tmp
 * could have been made by someone else first).
 */
export function ensureRunDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  const uid = euid();
  if (!st.isDirectory() || (st.uid !== uid && !inPocUserns())) {
    throw new PocError(`the runtime directory ${dir} is not a directory of this user (uid ${uid}): set XDG_RUNTIME_DIR to one that is`);
  }
}

/**
 * Removes a tree of the store. A rootless user cannot remove what a container or an image made as another of its
 * ids (a directory of uid 1 is uid 100000 on the host): then the removal runs in the user namespace, as root there.
 */
export async function removeTree(path: string, runDir: string): Promise<void> {
  try {
    rmSync(path, { recursive: true, force: true });
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (!(code === 'EACCES' || code === 'EPERM') || !rootless() || inPocUserns()) throw err;
  }
  const r = await runProgram(inUserns(['rm', '-rf', '--', path], { mount: false }), usernsEnv(process.env, runDir));
  if (r.code !== 0) throw new PocError(`remove ${path} in the user namespace: ${r.stderr.trim() || `exit status ${r.code}`}`);
}
