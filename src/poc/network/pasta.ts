/**
 * pasta's command line for a rootless container (pure): `--network pasta[:OPT,OPT...]` read as podman reads it
 * (pasta(1)'s own options, comma-separated), checked, and planned together with the container's `-p` ports into
 * the arguments the monitor runs pasta with (src/native/poc-monitor.c adds only --pid and --netns, which name fds
 * of its own).
 *
 * As podman's (containers/common libnetwork/pasta): --config-net always; --dns-forward 169.254.1.1 (written to
 * resolv.conf) unless the options give another address; `-t none`, `-u none`, `-T none`, `-U none` for each kind
 * of forward that neither the options nor `-p` ask for (no automatic forwarding of bound ports, in or out);
 * --no-map-gw unless the options say `--map-gw` (podman's, not pasta's: the gateway then reaches the host).
 *
 * What poc manages itself is refused by name: the namespace pasta joins and its lifetime (--netns, --userns,
 * --netns-only, --no-netns-quit, a PID or command), how poc learns that it is ready (--pid), its output, which
 * poc quotes only when pasta fails to start or dies (--debug, --trace, --stderr: use --log-file), and what is not pasta's in this
 * role (passt's --socket, --fd and --one-off; --runas, --help, --version). An option pasta(1) does not list is
 * refused too, so that a typo is named by poc rather than half-read by pasta.
 */
import { PocError } from '../errors.js';
import type { PortMapping } from './publish.js';

/**
 * The container's nameserver with pasta, unless its options name another: pasta forwards DNS sent there to the
 * host's first resolver (--dns-forward), as podman 5 writes it.
 */
export const PASTA_DNS = '169.254.1.1';

/** One of pasta(1)'s options: its names, whether it takes a value, and, if poc refuses it, why. */
interface PastaOption {
  short?: string;
  long: string;
  value: boolean;
  refused?: string;
}

const LIFETIME = "poc runs pasta on the container's network namespace and ends it with the container";
const OUTPUT = "poc quotes pasta's messages only when it fails (use --log-file FILE for more)";

/** pasta(1)'s options (passt 2023-03 and podman's --map-gw; --map-guest-addr of later versions). */
const OPTIONS: readonly PastaOption[] = [
  { short: 'd', long: 'debug', value: false, refused: OUTPUT },
  { long: 'trace', value: false, refused: OUTPUT },
  { short: 'e', long: 'stderr', value: false, refused: OUTPUT },
  { short: 'q', long: 'quiet', value: false },
  { short: 'f', long: 'foreground', value: false },
  { short: 'l', long: 'log-file', value: true },
  { long: 'log-size', value: true },
  { long: 'runas', value: true, refused: 'pasta runs as the user already' },
  { short: 'h', long: 'help', value: false, refused: 'it prints and exits' },
  { long: 'version', value: false, refused: 'it prints and exits' },
  { short: 'p', long: 'pcap', value: true },
  { short: 'P', long: 'pid', value: true, refused: 'poc learns from its pid that pasta is ready' },
  { short: 'm', long: 'mtu', value: true },
  { short: 'a', long: 'address', value: true },
  { short: 'n', long: 'netmask', value: true },
  { short: 'M', long: 'mac-addr', value: true },
  { short: 'g', long: 'gateway', value: true },
  { short: 'i', long: 'interface', value: true },
  { short: 'o', long: 'outbound', value: true },
  { long: 'outbound-if4', value: true },
  { long: 'outbound-if6', value: true },
  { short: 'D', long: 'dns', value: true },
  { long: 'dns-forward', value: true },
  { short: 'S', long: 'search', value: true },
  { long: 'dhcp-dns', value: false },
  { long: 'dhcp-search', value: false },
  { long: 'no-tcp', value: false },
  { long: 'no-udp', value: false },
  { long: 'no-icmp', value: false },
  { long: 'no-dhcp', value: false },
  { long: 'no-ndp', value: false },
  { long: 'no-dhcpv6', value: false },
  { long: 'no-ra', value: false },
  { long: 'no-map-gw', value: false },
  { long: 'map-gw', value: false },
  { long: 'map-guest-addr', value: true },
  { short: '4', long: 'ipv4-only', value: false },
  { short: '6', long: 'ipv6-only', value: false },
  { short: 's', long: 'socket', value: true, refused: "it is passt's (for a virtual machine), not pasta's" },
  { short: 'F', long: 'fd', value: true, refused: "it is passt's (for a virtual machine), not pasta's" },
  { short: '1', long: 'one-off', value: false, refused: "it is passt's (for a virtual machine), not pasta's" },
  { short: 't', long: 'tcp-ports', value: true },
  { short: 'u', long: 'udp-ports', value: true },
  { short: 'I', long: 'ns-ifname', value: true },
  { short: 'T', long: 'tcp-ns', value: true },
  { short: 'U', long: 'udp-ns', value: true },
  { long: 'userns', value: true, refused: LIFETIME },
  { long: 'netns', value: true, refused: LIFETIME },
  { long: 'netns-only', value: false, refused: LIFETIME },
  { long: 'no-netns-quit', value: false, refused: LIFETIME },
  { long: 'config-net', value: false },
];

/** What poc passes itself, always: the same option given again is left out (pasta refuses a repeated one). */
const ALWAYS = ['config-net', 'foreground', 'quiet'];

/** One option as given: its long name, the words it was given as, and its value. */
export interface GivenOption {
  name: string;
  words: string[];
  value?: string;
}

/**
 * `--network pasta:OPT,OPT...`'s options (OPTIONS: the text after "pasta:"), checked: each is one of pasta(1)'s,
 * not one poc refuses, with its value where it takes one (`-t,8080`, `--tcp-ports=8080`, `-t8080`).
 */
export function parsePastaOptions(text: string): GivenOption[] {
  const given = `--network pasta:${text}`;
  const words = text.split(',');
  const out: GivenOption[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const long = /^--([^=]+)(?:=(.*))?$/s.exec(word);
    const short = long ? undefined : /^-([^-])(.*)$/s.exec(word);
    const opt = long ? OPTIONS.find((o) => o.long === long[1]) : short ? OPTIONS.find((o) => o.short === short[1]) : undefined;
    if (!long && !short) {
      const why = word === '' ? 'an empty option' : `${JSON.stringify(word)} is not an option (pasta would take it for a PID or a command to run)`;
      throw new PocError(`invalid ${given}: ${why}; give pasta(1)'s options, comma-separated, each value after its option (pasta:-t,8080)`);
    }
    if (!opt) throw new PocError(`invalid ${given}: ${JSON.stringify(word)} is not an option of pasta(1)`);
    const name = `--${opt.long}`;
    if (opt.refused) throw new PocError(`invalid ${given}: ${word} is not for poc's pasta: ${opt.refused}`);
    let value: string | undefined;
    const attached = long ? long[2] : short![2] || undefined;
    if (opt.value) {
      value = attached ?? words[++i];
      // (No value of pasta's starts with "--": that is the next option, the value left out.)
      if (value === undefined || value === '' || (attached === undefined && value.startsWith('--'))) {
        throw new PocError(`invalid ${given}: ${word} needs a value (pasta:${word},VALUE)`);
      }
    } else if (attached !== undefined) {
      throw new PocError(`invalid ${given}: ${name} takes no value`);
    }
    out.push({ name, words: attached !== undefined || !opt.value ? [word] : [word, value!], ...(value !== undefined ? { value } : {}) });
  }
  return out;
}

export interface PastaPlan {
  /** pasta's arguments but --pid and --netns, which the monitor adds. */
  args: string[];
  /** The address the container's resolv.conf names: pasta forwards DNS sent there to the host's resolver. */
  dns: string;
}

/**
 * The arguments pasta runs with (pure): poc's, the container's `-p` ports (`-t`/`-u ADDR/HOST:CONTAINER`, bound in
 * the host's network namespace, on every address where `-p` names none) and the user's options, as podman
 * combines them.
 */
export function pastaPlan(options: readonly string[], publish: readonly PortMapping[]): PastaPlan {
  const given = options.length > 0 ? parsePastaOptions(options.join(',')) : [];
  const has = (name: string) => given.some((g) => g.name === name);
  const args = ['--config-net', '--foreground', '--quiet', ...forwardArgs(publish)];
  for (const g of given) if (!ALWAYS.includes(g.name.slice(2)) && g.name !== '--map-gw' && g.name !== '--no-map-gw') args.push(...g.words);
  const dnsForward = given.find((g) => g.name === '--dns-forward')?.value;
  if (!dnsForward) args.push('--dns-forward', PASTA_DNS);
  const forwards: Array<[string, string, boolean]> = [
    ['-t', '--tcp-ports', publish.some((p) => p.protocol === 'tcp')],
    ['-u', '--udp-ports', publish.some((p) => p.protocol === 'udp')],
    ['-T', '--tcp-ns', false],
    ['-U', '--udp-ns', false],
  ];
  for (const [flag, name, published] of forwards) if (!published && !has(name)) args.push(flag, 'none');
  if (!has('--map-gw')) args.push('--no-map-gw');
  // The monitor takes 128 (--pasta-arg); a list that long is no real configuration.
  if (args.length > 120) throw new PocError(`--network pasta: ${args.length} arguments for pasta, more than poc passes (120): give fewer options`);
  return { args, dns: dnsForward ?? PASTA_DNS };
}

/**
 * `-p` as pasta's forwards: one `-t`/`-u` per protocol and host address (pasta's spec takes one address, before
 * its list: `-t 127.0.0.1/8080:80,8443:443`; none: every address), consecutive ports as one range (`8000-8009:80-89`).
 */
function forwardArgs(publish: readonly PortMapping[]): string[] {
  const groups = new Map<string, PortMapping[]>();
  for (const p of publish) {
    const key = `${p.protocol} ${p.hostIp ?? ''}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  const out: string[] = [];
  for (const [key, ports] of groups) {
    const [protocol, ip] = key.split(' ') as [string, string];
    const items: string[] = [];
    for (let i = 0; i < ports.length; ) {
      let j = i;
      while (j + 1 < ports.length && ports[j + 1]!.hostPort === ports[j]!.hostPort + 1 && ports[j + 1]!.containerPort === ports[j]!.containerPort + 1) j++;
      const [a, b] = [ports[i]!, ports[j]!];
      items.push(i === j ? `${a.hostPort}:${a.containerPort}` : `${a.hostPort}-${b.hostPort}:${a.containerPort}-${b.containerPort}`);
      i = j + 1;
    }
    out.push(protocol === 'tcp' ? '-t' : '-u', `${ip ? `${ip}/` : ''}${items.join(',')}`);
  }
  return out;
}
