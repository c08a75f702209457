/**
 * An unprivileged user of the test's own, for running pocrun (and the engines) rootless: made with useradd (a
 * unique name; useradd gives it a subuid and subgid range unless asked not to), removed with its ranges,
 * processes and directories afterwards, also when the test fails. Commands run as the user through runuser,
 * with an XDG_RUNTIME_DIR the test makes and the user owns, as a login session would have.
 */
import { spawnSync, type SpawnSyncOptions, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { rootlessSpec } from '../../src/spec/default.js';
import { parseSubids } from '../../src/subids.js';
import type { Spec } from '../../src/spec/generated/config.js';

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** Its home (made by the test: podman keeps its storage under it). */
  home: string;
  /** XDG_RUNTIME_DIR: 0700, the user's. */
  runtimeDir: string;
  /** The user's first subuid and subgid range, when it has one. */
  subuid?: { start: number; count: number };
  subgid?: { start: number; count: number };
  /** The environment a command of the user's runs with. */
  env: Record<string, string>;
  /** Runs a program as the user (runuser -u; the environment is `env` and `extraEnv` only). */
  run(cmd: string, args: string[], opts?: SpawnSyncOptions & { extraEnv?: Record<string, string> }): SpawnSyncReturns<string>;
  /** The argv prefix that runs a program as the user, for spawn. */
  prefix(extraEnv?: Record<string, string>): string[];
  /** Processes of the user still alive (pid and command line). */
  processes(): string[];
  /** Ends the user's processes (by pid), removes the user, its ranges and its directories. */
  remove(): void;
}

let made = 0;

/**
 * Makes a user whose name starts with `prefix` (plus this process's pid and a counter: unique on the machine).
 * `subids: false` makes one without subuid/subgid ranges.
 */
export function makeTestUser(work: string, opts: { prefix?: string; subids?: boolean } = {}): TestUser {
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
      return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
    },
    remove() {
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
  return user;
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
