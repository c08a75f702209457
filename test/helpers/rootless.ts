/**
 * An unprivileged user of the test's own, for running pocrun (and the engines) rootless: made with useradd (a
 * unique name; useradd gives it a subuid and subgid range unless asked not to), removed with its ranges,
 * processes and directories afterwards, also when the test fails. Commands run as the user through runuser,
 * with an XDG_RUNTIME_DIR the test makes and the user owns, as a login session would have.
 *
 * `linger: true` on a host that delegates cgroups to users (USER_DELEGATION: systemd the init, cgroup v2 alone; the
 * guest) gives the user what a login gives it there: its own systemd (`loginctl enable-linger`, user@UID.service,
 * which logind starts with the controllers it delegates), its runtime directory /run/user/UID and its bus. Its
 * containers can then have cgroups of their own (pocrun --systemd-cgroup, poc's scopes, a scope of its systemd
 * with Delegate=yes). Elsewhere the option changes nothing: such a user has no systemd of its own.
 */
import { spawnSync, type SpawnSyncOptions, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { rootlessSpec } from '../../src/spec/default.js';
import { parseSubids } from '../../src/subids.js';
import type { Spec } from '../../src/spec/generated/config.js';

/**
 * Whether this host delegates a cgroup subtree to a user's own systemd: systemd is the init (sd_booted(3)) and
 * cgroup v2 is the only hierarchy (the guest, scripts/guest/). On cgroup v1, or without systemd (this
 * repository's development host), a rootless container has no cgroup of its own, as with runc.
 */
export const USER_DELEGATION = existsSync('/run/systemd/system') && existsSync('/sys/fs/cgroup/cgroup.controllers');

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Its home (made by the test: podman keeps its storage under it). */
  home: string;
  /** XDG_RUNTIME_DIR: 0700, the user's (/run/user/UID when it lingers, else one the test makes). */
  runtimeDir: string;
  /**
   * When it lingers: its systemd's cgroup (user@UID.service's, below which that systemd makes its units), and the
   * environment that reaches that systemd (XDG_RUNTIME_DIR and its bus, which `env` holds too).
   */
  manager?: { cgroup: string; env: Record<string, string> };
  /** The user's first subuid and subgid range, when it has one. */
  subuid?: { start: number; count: number };
  subgid?: { start: number; count: number };
  /** The environment a command of the user's runs with. */
  env: Record<string, string>;
  /** Runs a program as the user (runuser -u; the environment is `env` and `extraEnv` only). */
  run(cmd: string, args: string[], opts?: SpawnSyncOptions & { extraEnv?: Record<string, string> }): SpawnSyncReturns<string>;
  /** The argv prefix that runs a program as the user, for spawn. */
  prefix(extraEnv?: Record<string, string>): string[];
  /** Processes of the user still alive (pid and command line), but those of its own systemd and bus. */
  processes(): string[];
  /** Ends the user's processes (by pid), removes the user, its ranges and its directories. */
  remove(): void;
}

let made = 0;

/**
 * Makes a user whose name starts with `prefix` (plus this process's pid and a counter: unique on the machine).
 * `subids: false` makes one without subuid/subgid ranges.
 */
export function makeTestUser(work: string, opts: { prefix?: string; subids?: boolean; linger?: boolean } = {}): TestUser {
  const name = `${opts.prefix ?? 'pocrl'}${process.pid}x${made++}`.slice(0, 31);
  const home = join(work, `home-${name}`);
  const args = ['-M', '-d', home, '-s', '/bin/sh', '-U'];
  // useradd adds ranges by itself (login.defs SUB_UID_COUNT) for a user that is not a system user.
  if (opts.subids === false) args.push('-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0');
  const add = spawnSync('useradd', [...args, name], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`useradd ${name}: ${add.stderr}`);
  const ids = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const uid = Number(ids.stdout.trim());
  const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
  const user: TestUser = {
    name,
    uid,
    gid,
    home,
    runtimeDir: join(work, `run-${name}`),
    ...(opts.linger && USER_DELEGATION ? { manager: { cgroup: `/user.slice/user-${uid}.slice/user@${uid}.service`, env: {} } } : {}),
    subuid: subidRange('/etc/subuid', name, uid),
    subgid: subidRange('/etc/subgid', name, gid),
    env: {},
    run(cmd, cmdArgs, o = {}) {
      const { extraEnv, ...spawnOpts } = o;
      const [bin, ...pre] = this.prefix(extraEnv);
      return spawnSync(bin!, [...pre, cmd, ...cmdArgs], { encoding: 'utf8', timeout: 120_000, ...spawnOpts }) as SpawnSyncReturns<string>;
    },
    prefix(extraEnv = {}) {
      const env = { ...this.env, ...extraEnv };
      return ['runuser', '-u', name, '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
    },
    processes() {
      const r = spawnSync('ps', ['-u', String(uid), '-o', 'pid=,args='], { encoding: 'utf8' });
      const lines = r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
      const manager = this.manager?.cgroup;
      // The manager itself (and its sd-pam) in init.scope; the bus, socket-activated, in dbus.service.
      const own = (pid: number) => manager !== undefined && /^\/(init\.scope|([a-z]+\.slice\/)?dbus\.service)$/.test(cgroupOf(pid)?.slice(manager.length) ?? '');
      return lines.filter((l) => !own(Number(l.split(/\s+/)[0])));
    },
    remove() {
      if (this.manager) {
        // logind stops the user's systemd (and removes /run/user/UID) once it no longer lingers; stopped here
        // and now, so that none of its processes is left to the kill below.
        spawnSync('loginctl', ['disable-linger', name]);
        spawnSync('systemctl', ['stop', `user@${uid}.service`]);
      }
      for (let round = 0; round < 50; round++) {
        const pids = this.processes().map((l) => Number(l.split(/\s+/)[0]));
        if (pids.length === 0) break;
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone meanwhile */
          }
        }
        spawnSync('sleep', ['0.1']);
      }
      // userdel also takes the user's lines out of /etc/subuid and /etc/subgid.
      spawnSync('userdel', ['-f', name], { encoding: 'utf8' });
      for (const dir of [home, this.runtimeDir]) rmSync(dir, { recursive: true, force: true });
    },
  };
  user.env = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: home,
    USER: name,
    LOGNAME: name,
    XDG_RUNTIME_DIR: user.runtimeDir,
  };
  for (const dir of [home, user.runtimeDir]) {
    mkdirSync(dir, { recursive: true });
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  if (user.manager) {
    try {
      startUserManager(user, user.manager);
    } catch (err) {
      user.remove();
      throw err;
    }
  }
  return user;
}

/** Lingering: logind starts the user's systemd, which listens on its bus once started. */
function startUserManager(user: TestUser, manager: NonNullable<TestUser['manager']>): void {
  const linger = spawnSync('loginctl', ['enable-linger', user.name], { encoding: 'utf8' });
  if (linger.status !== 0) throw new Error(`loginctl enable-linger ${user.name}: ${linger.stderr}`);
  // (Started already by logind as the linger takes effect; start waits for it to be up.)
  const start = spawnSync('systemctl', ['start', `user@${user.uid}.service`], { encoding: 'utf8', timeout: 120_000 });
  if (start.status !== 0) throw new Error(`systemctl start user@${user.uid}.service: ${start.stderr}`);
  rmSync(user.runtimeDir, { recursive: true, force: true });
  user.runtimeDir = `/run/user/${user.uid}`;
  const bus = join(user.runtimeDir, 'bus');
  for (let i = 0; i < 600 && !existsSync(bus); i++) spawnSync('sleep', ['0.1']);
  if (!existsSync(bus)) throw new Error(`the bus of ${user.name}'s systemd (${bus}) did not appear`);
  manager.env = { XDG_RUNTIME_DIR: user.runtimeDir, DBUS_SESSION_BUS_ADDRESS: `unix:path=${bus}` };
  Object.assign(user.env, manager.env);
}

/** A process's cgroup v2 path (the `0::` line of /proc/PID/cgroup); undefined once it is gone. */
function cgroupOf(pid: number): string | undefined {
  try {
    return /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

function subidRange(file: string, name: string, id: number): { start: number; count: number } | undefined {
  return existsSync(file) ? parseSubids(readFileSync(file, 'utf8'), { name, id })[0] : undefined;
}

/** Whether the user still appears anywhere it was recorded (passwd, group, subuid, subgid). */
export function userResidue(name: string): string[] {
  return ['/etc/passwd', '/etc/group', '/etc/subuid', '/etc/subgid'].filter(
    (f) => existsSync(f) && readFileSync(f, 'utf8').split('\n').some((l) => l.startsWith(`${name}:`)),
  );
}

/** Gives a tree (a bundle the test made as root) to the user, as a bundle of its own would be. */
export function chownTree(path: string, uid: number, gid: number): void {
  const r = spawnSync('chown', ['-hR', `${uid}:${gid}`, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`chown -hR ${path}: ${r.stderr}`);
}

/**
 * A test spec made rootless as `pocrun spec --rootless` makes it for this user, with no cgroup named (a rootless
 * container without a delegated cgroup must not name one, as with runc).
 */
export function toRootless(spec: Spec, user: { uid: number; gid: number }): Spec {
  const out = rootlessSpec(spec, user.uid, user.gid);
  delete out.linux!.cgroupsPath;
  return out;
}
