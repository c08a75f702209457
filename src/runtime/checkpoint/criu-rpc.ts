/**
 * criu's RPC, as pocrun's dump speaks it: one request to `criu swrk` over the SOCK_SEQPACKET socket the native front
 * made and started criu on (src/native/front/criu.c), one answer. runc speaks the same protocol through go-criu.
 *
 * The request carries what only it can carry (the tree's pid, the image and work directories as descriptors of
 * this process, the log) and names a configuration file holding every other option, in the same criu command-line
 * names a restore's command line uses (plan.ts): criu reads that file after the request and applies it as its
 * own command line (cr-service.c, config_file), so the two ways of running criu share one list of options.
 */
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { PocrunError } from '../../errors.js';
import { findCriu } from './criu.js';
import { criu_req, criu_req_type, criu_resp } from './generated/rpc.js';

/** Where the front says what it started: "FD PID PATH", or empty where it started no criu (front.h). */
const CRIU_SWRK_ENV = 'POCRUN_CRIU_SWRK';

/** The `criu swrk` the front started for this command, and the end of its socket that is this process's. */
export interface CriuService {
  fd: number;
  pid: number;
  criu: string;
}

/**
 * The criu the front started for this command (FLAG: --criu). Where it started none, the error names why: criu
 * missing or --criu not executable (findCriu, the rule the front follows), else that it could not be started.
 * pocrun-ts run alone, without the front, has no way to make the socket pair.
 */
export function frontCriu(flag: string | undefined): CriuService {
  const value = process.env[CRIU_SWRK_ENV];
  if (value === undefined) {
    throw new PocrunError('checkpoint needs criu started by pocrun\'s native front (dist/pocrun), which makes the socket criu\'s RPC needs: run pocrun, not pocrun-ts');
  }
  const m = /^(\d+) (\d+) (.+)$/.exec(value);
  if (!m) throw new PocrunError(`checkpoint needs criu: ${findCriu(flag)} could not be started as criu's RPC service (criu swrk)`);
  const service = { fd: Number(m[1]), pid: Number(m[2]), criu: m[3]! };
  // A descriptor that is not a socket is not the front's: never write a request into whatever it is.
  if (!fstatSync(service.fd).isSocket()) throw new PocrunError(`${CRIU_SWRK_ENV}: fd ${service.fd} is not a socket`);
  return service;
}

export interface RpcDump {
  type: 'dump' | 'pre-dump';
  pid: number;
  imagePath: string;
  workPath: string;
  logFile: string;
  logLevel: number;
  /** The configuration file with the other options (plan.ts configFile). */
  configFile: string;
}

/** criu's answer when it is a refusal: its errno and message, where it gave them. */
export class CriuRefused extends Error {}

/**
 * Sends the dump request and waits for criu's answer. Throws CriuRefused when criu answers that the dump failed
 * (its log says why) or ends without answering (it died: its log, or `criu check`, says why).
 */
export function rpcDump(service: CriuService, d: RpcDump): void {
  const dirFd = (path: string) => openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  const imagesFd = dirFd(d.imagePath);
  const workFd = d.workPath === d.imagePath ? imagesFd : dirFd(d.workPath);
  try {
    // criu opens the directories as /proc/<peer>/fd/N: the peer is this process, which made the socket pair
    // under the front's name (the same pid across the execve).
    const request = criu_req.encode({
      type: d.type === 'dump' ? criu_req_type.DUMP : criu_req_type.PRE_DUMP,
      opts: {
        images_dir_fd: imagesFd,
        work_dir_fd: workFd,
        pid: d.pid,
        log_file: d.logFile,
        log_level: d.logLevel,
        config_file: d.configFile,
      },
    }).finish();
    try {
      writeSync(service.fd, request);
    } catch (err) {
      throw new CriuRefused(`criu (pid ${service.pid}) is not there to take the request: ${(err as Error).message}`);
    }
    const answer = readAnswer(service.fd);
    if (!answer) throw new CriuRefused(`criu (pid ${service.pid}) ended without an answer`);
    const resp = criu_resp.decode(answer);
    if (!resp.success) {
      const detail = [resp.cr_errmsg, resp.cr_errno ? `errno ${resp.cr_errno}` : ''].filter(Boolean).join(', ');
      throw new CriuRefused(`criu answered that the ${d.type} failed${detail ? ` (${detail})` : ''}`);
    }
  } finally {
    closeSync(imagesFd);
    if (workFd !== imagesFd) closeSync(workFd);
    // criu serves one request: the end of the socket tells it to exit.
    closeSync(service.fd);
  }
}

/** One seqpacket message: criu's answers are far below this size (cr-service.c, CR_MAX_MSG_SIZE). */
function readAnswer(fd: number): Uint8Array | undefined {
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    try {
      const n = readSync(fd, buf, 0, buf.length, null);
      return n > 0 ? buf.subarray(0, n) : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINTR') throw err;
    }
  }
}
