/**
 * Name resolution on a user network: one dnsmasq per network, listening on the bridge's gateway addresses,
 * answering the names of the network's containers from a hosts file poc writes, and forwarding every other
 * name to the host's resolvers. It runs only while one of the network's containers does: started by the
 * first setup, told to re-read the file (SIGHUP) on every change, stopped (SIGTERM) when the last one goes.
 * Why dnsmasq: a well-kept server that is in Debian, starts in milliseconds, daemonizes once it listens
 * (so a failure to bind is an exit status here) and re-reads its hosts file on a signal.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PocError } from '../errors.js';
import { pocPaths, writeFileAtomic, type RootOptions } from '../poc-root.js';
import { isIpv4, isIpv6 } from './address.js';
import { run, type NetnsOptions } from './system.js';
import { readProcStat } from '../../common/proc.js';

export interface DnsServerSpec {
  /** Directory of this network's server: hosts, dnsmasq.pid, dnsmasq.log. */
  dir: string;
  /** The bridge's gateway addresses. */
  listen: string[];
  /** Where other names go: the host's nameservers. */
  upstreams: string[];
}

export function dnsDir(network: string, opts: RootOptions = {}): string {
  return join(pocPaths(opts).network, 'dns', network);
}

/** The host's nameservers from resolv.conf text (any address: the server runs on the host, loopback included). */
export function upstreamServers(resolvConf: string): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && (isIpv4(m[1]!) || isIpv6(m[1]!.replace(/%.*$/, '')))) out.push(m[1]!);
  }
  return out;
}

/** dnsmasq's command line (pure). */
export function dnsmasqArgs(s: DnsServerSpec): string[] {
  return [
    '--conf-file=/dev/null', // nothing from /etc/dnsmasq.conf
    `--pid-file=${join(s.dir, 'dnsmasq.pid')}`,
    `--log-facility=${join(s.dir, 'dnsmasq.log')}`,
    '--bind-interfaces', // only the gateway addresses: never the host's other interfaces or port 53 on them
    ...s.listen.map((a) => `--listen-address=${a}`),
    '--no-hosts', // not the host's /etc/hosts: only the network's containers
    `--addn-hosts=${join(s.dir, 'hosts')}`,
    '--no-resolv',
    ...s.upstreams.map((u) => `--server=${u}`),
    '--no-negcache', // a name asked for before its container started must resolve once it has
    // A plain name (a container's or service's, "api") is never sent upstream: its AAAA query, which getaddrinfo
    // asks with the A one, is answered "not found" at once instead of waiting on the host's resolvers (seconds
    // where they do not answer), as docker's embedded DNS answers it.
    '--domain-needed',
    '--user=root', // it reads the hosts file under poc's root (mode 0700) again on every SIGHUP
  ];
}

function readPid(dir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, 'dnsmasq.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  // Ours only if it is a dnsmasq with this very pid file (the pid may have been reused since).
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes(`--pid-file=${join(dir, 'dnsmasq.pid')}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function dnsServerPid(dir: string): number | undefined {
  return readPid(dir);
}

/** Writes the hosts file and makes the server answer from it: SIGHUP when it runs, else a start. */
export async function ensureDnsServer(s: DnsServerSpec, hosts: string, o: NetnsOptions = {}): Promise<void> {
  mkdirSync(s.dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(s.dir, 'hosts'), hosts);
  const pid = readPid(s.dir);
  if (pid !== undefined) {
    process.kill(pid, 'SIGHUP');
    return;
  }
  const path = (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  if (!path.some((d) => d && existsSync(join(d, 'dnsmasq')))) {
    throw new PocError('name resolution on user networks needs dnsmasq, which is not installed: apt-get install dnsmasq-base');
  }
  try {
    await run('dnsmasq', dnsmasqArgs(s), { netns: o.hostNetns });
  } catch (err) {
    throw new PocError(`start the DNS server of the network: ${(err as Error).message}`, 1, { cause: err });
  }
}

/** Stops the server (if it runs) and removes its directory; waits until it is gone, so its port is free. */
export async function stopDnsServer(dir: string): Promise<void> {
  const pid = readPid(dir);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone meanwhile
    }
    // Gone, or a zombie: dnsmasq is reparented to whoever reaps orphans here (a monitor is a subreaper), which
    // may not reap it at once; waiting for the pid to vanish cost the full 2 s each time.
    for (let i = 0; i < 200; i++) {
      const st = readProcStat(pid);
      if (!st || st.state === 'Z' || st.state === 'X') break;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  rmSync(dir, { recursive: true, force: true });
}
