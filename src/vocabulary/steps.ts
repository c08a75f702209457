/**
 * Every step of the init plan (src/plan/PROTOCOL.md): its name, its fields, what it is for and what it does. The one
 * definition of a step. From it come the type of each step's fields in TypeScript (`Step`, below), the C table
 * pocrun-init decodes plans with and the prototype of each `step_*` function (scripts/gen-native.ts writes them into
 * src/native/generated/steps.h at build time: a step without its C function does not link, a `step_*` function
 * without a step does not compile), the step tables of PROTOCOL.md (rewritten by the same script), the purpose that
 * a helper's error message names, and the field counts test/native/harness.py checks its plans against.
 *
 * A step is encoded as its name and then its fields, in order: `fields`; or, with `optional`, that group first or
 * not at all; `rest`, any number of fields (at least `min`, at most `max`); then `ref`, the config field the step
 * comes from as a JSON pointer, or `-`. Fields are text: numbers in decimal unless the step says otherwise.
 */
export interface StepDef {
  /** Which table of PROTOCOL.md describes it: before `clone`, after it, or the seccomp filter's. */
  readonly stage: 'parent' | 'child' | 'seccomp';
  readonly fields: readonly string[];
  readonly optional?: readonly string[];
  readonly rest?: { readonly doc: string; readonly min: number; readonly max?: number };
  readonly ref: boolean;
  /** What the runtime's message says the step was for: `<purpose> (config.json <ref>): <the helper's message>`. */
  readonly purpose: string;
  /** PROTOCOL.md's description: markdown, on one line. */
  readonly doc: string;
}

export const STEPS = {
  setns: {
    stage: 'parent', fields: ['path', 'nstype'], ref: true, purpose: 'join namespace',
    doc: "`open(path)` + `setns(fd, nstype)` where nstype is one of `user mnt pid net ipc uts cgroup time` (joins an existing namespace). The runtime orders them `ipc uts net pid cgroup time user mnt`: as root of the initial user namespace the helper may join any namespace, so those owned by another user namespace than the container's (a container's time namespace is owned by the host's) are joined before `user`. After joining a `user` namespace the helper becomes its root (`setresgid(0,0,0)`, `setresuid(0,0,0)`, as runc), keeping its capabilities in it, so that what the init creates belongs to the container's root; steps that touch host paths (`exec-fifo`, `console-connect`, `seccomp-listener`) come before it",
  },
  'idmap-tree': {
    stage: 'parent', fields: ['source', 'rbind', 'ridmap', 'uid-map', 'gid-map'], ref: true, purpose: 'prepare id-mapped mount',
    doc: "an id-mapped bind mount's tree, made in the host's namespaces (parent stage, before any `setns`): `open_tree(source, OPEN_TREE_CLONE` [`| AT_RECURSIVE` when rbind is `1`]`)`, a user namespace with these maps (uid_map and gid_map text; a child that unshares it and waits while the helper writes them and opens its ns file), and `mount_setattr(MOUNT_ATTR_IDMAP)` with it [`AT_RECURSIVE` when ridmap is `1`]. The tree's fd is kept for `move-tree`",
  },
  'seccomp-listener': {
    stage: 'parent', fields: ['path', 'head'], ref: true, purpose: 'connect to seccomp agent',
    doc: "connect a `SOCK_STREAM` unix socket to the seccomp agent at path (a host path: before any `setns`), keep it for `seccomp-load`. head is the JSON of the container process state without its closing brace, `pid` and `state` (see \"seccomp\" below)",
  },
  'cgroup-join': {
    stage: 'parent', fields: ['procs-file'], ref: true, purpose: 'join cgroup',
    doc: "write the helper's own pid to this `cgroup.procs` (the child inherits the cgroup)",
  },
  'device-filter': {
    stage: 'parent', fields: ['cgroup-dir', 'program'], ref: true, purpose: 'attach device filter',
    doc: "cgroup v2's device rules (`src/native/device-filter.c`): program is the hex of a BPF_PROG_TYPE_CGROUP_DEVICE program's instructions (src/cgroups/device-filter.ts), loaded (license `Apache`, name `pocrun_devices`; on failure once more for the verifier's log), attached to cgroup-dir with `BPF_F_ALLOW_MULTI`, and every program attached there before is then detached. Before any `setns`: it needs the host's CAP_SYS_ADMIN",
  },
  'exec-fifo': {
    stage: 'parent', fields: ['state-dir', 'uid', 'gid'], ref: false, purpose: 'make exec.fifo',
    doc: "`mkfifo(state-dir/exec.fifo, 0622)`, chown to uid:gid, keep `O_PATH` fds of state-dir and of the fifo for `wait-start`",
  },
  'console-connect': {
    stage: 'parent', fields: ['socket-path'], ref: true, purpose: 'connect console socket',
    doc: "connect a `SOCK_STREAM` unix socket to socket-path, keep the fd for `console`",
  },
  'time-offset': {
    stage: 'parent', fields: ['clock', 'seconds', 'nanoseconds'], ref: true, purpose: 'set time namespace offset',
    doc: "`linux.timeOffsets`: clock is `monotonic` or `boottime`. The first one `unshare(CLONE_NEWTIME)`s; each writes `/proc/self/timens_offsets`. Must come before `clone`, whose `time` then means that namespace (a time namespace made by clone itself gets zero offsets: they can only be set before a process enters it)",
  },
  clone: {
    stage: 'parent', fields: ['mode'], rest: { doc: 'namespace...', min: 0 }, ref: false, purpose: 'create namespaces',
    doc: "`clone3()` a child with `CLONE_NEW*` for each namespace named (`user mnt pid net ipc uts cgroup time`)",
  },
  sync: {
    stage: 'child', fields: ['name'], ref: false, purpose: 'sync',
    doc: "write `sync <name>`, block until the runtime replies. Reply `ok` continues; `ok <json>` continues and keeps `<json>` as the container state given to hooks run by the helper; anything else (or EOF) makes the helper exit 1 quietly. Names used: `maps` (runtime writes uid/gid maps, setgroups), `netdevices` (runtime moves linux.netDevices into the container's network namespace), `hooks` (runtime runs prestart and createRuntime hooks). After `maps`, if `clone` made a user namespace, the helper becomes its root (`setresgid(0,0,0)`, `setresuid(0,0,0)`): until then it is the unmapped host root, and what it creates (mount points, devices' files) would not belong to the container.",
  },
  setsid: {
    stage: 'child', fields: [], ref: false, purpose: 'setsid',
    doc: "`setsid()`",
  },
  propagation: {
    stage: 'child', fields: ['target', 'flags'], ref: true, purpose: 'set mount propagation',
    doc: "`mount(NULL, target, NULL, flags, NULL)` (flags: MS_REC and one of MS_SLAVE/MS_PRIVATE/MS_SHARED/MS_UNBINDABLE). Before `rootfs` target is a path of the helper's mount namespace (`/`: the whole tree); from `rootfs` on it is a container path resolved in the root like a mount's dest (after pivot `/` is the container's root)",
  },
  rootfs: {
    stage: 'child', fields: ['path'], ref: true, purpose: 'prepare rootfs',
    doc: "bind `path` onto itself (`MS_BIND|MS_REC`), open it `O_PATH|O_DIRECTORY`: the root fd that every later path is resolved in",
  },
  'root-open': {
    stage: 'child', fields: ['path'], ref: true, purpose: 'open rootfs',
    doc: "without a mount namespace of the container's own: open `path` `O_PATH|O_DIRECTORY` as the root fd, nothing bound or mounted (it would be in the runtime's namespace)",
  },
  mount: {
    stage: 'child', fields: ['source', 'dest', 'fstype', 'flags', 'data', 'kind'], ref: true, purpose: 'mount',
    doc: "see below",
  },
  'move-tree': {
    stage: 'child', fields: ['index', 'dest', 'flags'], ref: true, purpose: 'mount',
    doc: "attach the tree of the index-th `idmap-tree` step at dest (resolved in the root like a mount's; a directory or a file as the tree's root is) with `move_mount`, then as a bind `mount`: its flags by a bind remount, its propagation",
  },
  setattr: {
    stage: 'child', fields: ['dest', 'attr-set', 'attr-clr'], ref: true, purpose: 'set mount attributes',
    doc: "`mount_setattr(dest-in-root, AT_RECURSIVE, {attr_set, attr_clr})` with MOUNT_ATTR_* values (decimal): the recursive mount options `rro`, `rnosuid`, ... of config.md, applied after the `mount` of the same dest",
  },
  remount: {
    stage: 'child', fields: ['dest', 'flags'], ref: true, purpose: 'remount',
    doc: "`mount(NULL, dest-in-root, NULL, MS_REMOUNT|MS_BIND|flags)` (read-only bind, etc.), dest resolved in the root (locked flags kept on EPERM, as for bind mounts)",
  },
  mknod: {
    stage: 'child', fields: ['dest', 'type', 'major', 'minor', 'mode', 'uid', 'gid'], ref: true, purpose: 'create device',
    doc: "type is `c`, `b`, `p` or `u` (= c); mode is the permission bits in octal (`666`), applied exactly (umask 0). Created in the root; if it exists and is the same device, leave it; anything else there (not a directory) is replaced; uid/gid chown",
  },
  'bind-dev': {
    stage: 'child', fields: ['hostpath', 'dest'], ref: true, purpose: 'bind device',
    doc: "in a user namespace devices cannot be made: create an empty file at dest and bind the host's device on it",
  },
  symlink: {
    stage: 'child', fields: ['target', 'linkpath'], ref: true, purpose: 'create symlink',
    doc: "`symlinkat(target, root, linkpath)`; an existing link with the same target is fine",
  },
  hook: {
    stage: 'child', fields: ['phase', 'timeout', 'path', 'argc'], rest: { doc: 'argv..., envc, env...', min: 1 }, ref: true, purpose: 'hook',
    doc: "declare a hook for `run-hooks` (phase `createContainer` or `startContainer`; timeout in seconds, 0 = none; argc 0 means argv is just path)",
  },
  'run-hooks': {
    stage: 'child', fields: ['phase'], ref: false, purpose: 'run hook',
    doc: "run the declared hooks of that phase in order: fork, exec `path` with argv/env, the state (from `sync`) on stdin; kill it (SIGKILL) at the timeout. The hook gets fds 0-2 only: stdin the state, stdout and stderr captured. A non-zero exit fails the step, ref = the hook's ref, message `hook <path>: exit status N` / `killed by signal N` / `timed out after Ns`, followed by `: <the end of its output>`",
  },
  'pivot-root': {
    stage: 'child', fields: [], ref: true, purpose: 'pivot_root',
    doc: "make the root fd the new root: `fchdir(root); pivot_root(\".\", \".\"); umount2(\".\", MNT_DETACH)` after making the old root `MS_SLAVE|MS_REC`; `chdir(\"/\")`",
  },
  chroot: {
    stage: 'child', fields: [], ref: true, purpose: 'chroot',
    doc: "`--no-pivot`: `fchdir(root); mount(\".\", \"/\", MS_MOVE); chroot(\".\"); chdir(\"/\")`",
  },
  'chroot-only': {
    stage: 'child', fields: [], ref: true, purpose: 'chroot',
    doc: "without a mount namespace: `fchdir(root); chroot(\".\"); chdir(\"/\")`, no `MS_MOVE` (it would move the rootfs over the runtime's `/`)",
  },
  mask: {
    stage: 'child', fields: ['path'], ref: true, purpose: 'mask path',
    doc: "after pivot: bind `/dev/null` over a file, or mount a read-only tmpfs on a directory; a missing path is skipped. /dev/null is checked to be a char device 1:3 before use, and the target is opened `O_PATH|O_NOFOLLOW` and mounted through `/proc/self/fd/N`; a target that is a symlink fails the step (ELOOP)",
  },
  readonly: {
    stage: 'child', fields: ['path'], ref: true, purpose: 'make path read-only',
    doc: "after pivot: bind the path on itself and remount it read-only (MS_NOSUID|MS_NODEV|MS_NOEXEC and the atime flags are kept as they were); missing path skipped, symlink fails as for `mask`",
  },
  'remount-root': {
    stage: 'child', fields: ['flags'], ref: true, purpose: 'make rootfs read-only',
    doc: "after pivot: `mount(NULL, \"/\", NULL, MS_REMOUNT|MS_BIND|flags)` (root.readonly)",
  },
  sysctl: {
    stage: 'child', fields: ['key', 'value'], ref: true, purpose: 'set sysctl',
    doc: "write value to `/proc/sys/<key with . replaced by />` (a key that contains `/` is taken as the path, for names with dots: `net/ipv4/conf/eth0.100/forwarding`)",
  },
  loopback: {
    stage: 'child', fields: [], ref: true, purpose: 'loopback',
    doc: "in a new network namespace: set `IFF_UP` on `lo` (`SIOCGIFFLAGS`/`SIOCSIFFLAGS` on an `AF_INET` socket), as runc and crun do",
  },
  'session-keyring': {
    stage: 'child', fields: ['name'], ref: true, purpose: 'session-keyring',
    doc: "`keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`: a session keyring of the container's own (unless --no-new-keyring)",
  },
  hostname: {
    stage: 'child', fields: ['name'], ref: true, purpose: 'set hostname',
    doc: "`sethostname`",
  },
  domainname: {
    stage: 'child', fields: ['name'], ref: true, purpose: 'set domainname',
    doc: "`setdomainname`",
  },
  'oom-score-adj': {
    stage: 'child', fields: ['value'], ref: true, purpose: 'set oom_score_adj',
    doc: "write `/proc/self/oom_score_adj`",
  },
  rlimit: {
    stage: 'child', fields: ['resource-number', 'soft', 'hard'], ref: true, purpose: 'set rlimit',
    doc: "`setrlimit`; `-1` means RLIM_INFINITY. EPERM is reported as such",
  },
  console: {
    stage: 'child', fields: [], optional: ['rows', 'cols'], ref: true, purpose: 'set up console',
    doc: "open `/dev/ptmx` (the container's), unlock, send the master over the console socket with `SCM_RIGHTS` (the message's payload is the slave's name, `/dev/pts/N`, as runc sends it), make the slave (opened with `TIOCGPTPEER`) stdin/stdout/stderr and the controlling terminal (after `setsid`), bind-mount the slave onto `/dev/console` (made if missing; refused if `/dev/console` is or goes through a symlink, CVE-2025-52565). With rows and cols (`process.consoleSize`) the size is set first. In an exec plan (no `rootfs` step) `/dev/ptmx` is opened in the root `setns` gave and `/dev/console` is left alone (it is the init's)",
  },
  chdir: {
    stage: 'child', fields: ['path'], ref: true, purpose: 'change to cwd',
    doc: "`chdir(path)` then check that `getcwd` succeeds and does not start with `(unreachable)` (CVE-2024-21626)",
  },
  umask: {
    stage: 'child', fields: ['mask'], ref: true, purpose: 'set umask',
    doc: "`umask(mask)`, mask in octal",
  },
  groups: {
    stage: 'child', fields: [], rest: { doc: 'gid...', min: 0 }, ref: false, purpose: 'set additional groups',
    doc: "`setgroups()` with the list (may be empty)",
  },
  'keep-caps': {
    stage: 'child', fields: [], ref: false, purpose: 'keep-caps',
    doc: "`prctl(PR_SET_KEEPCAPS, 1)`",
  },
  user: {
    stage: 'child', fields: ['uid', 'gid'], ref: true, purpose: 'set user',
    doc: "`setresgid(gid)` then `setresuid(uid)`",
  },
  caps: {
    stage: 'child', fields: ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'], ref: true, purpose: 'set capabilities',
    doc: "64-bit masks in hex (no 0x). Drops every cap not in bounding (`PR_CAPBSET_DROP` up to the last cap), `capset` the three sets, raises each ambient cap. Works after `keep-caps` + `user`: the effective set is first raised to the permitted one (dropping needs CAP_SETPCAP). Bits above the kernel's last cap are ignored",
  },
  'no-new-privs': {
    stage: 'child', fields: [], ref: true, purpose: 'set no_new_privs',
    doc: "`prctl(PR_SET_NO_NEW_PRIVS, 1)`",
  },
  scheduler: {
    stage: 'child', fields: ['policy', 'nice', 'priority', 'flags', 'runtime', 'deadline', 'period'], ref: true, purpose: 'set scheduler',
    doc: "`sched_setattr(0, ...)` (process.scheduler): policy is the SCHED_* number, flags the SCHED_FLAG_* bits, runtime/deadline/period in ns. Comes before `user`/`caps` (a negative nice or a realtime policy needs CAP_SYS_NICE)",
  },
  ioprio: {
    stage: 'child', fields: ['class', 'priority'], ref: true, purpose: 'set I/O priority',
    doc: "`ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | priority)` (process.ioPriority; class 1 RT, 2 BE, 3 IDLE); before `user`/`caps`",
  },
  personality: {
    stage: 'child', fields: ['value'], ref: true, purpose: 'set personality',
    doc: "`personality(value)` (linux.personality: PER_LINUX 0 or PER_LINUX32 8, ORed with the flag bits of `<linux/personality.h>`)",
  },
  mempolicy: {
    stage: 'child', fields: ['mode', 'nodes'], ref: true, purpose: 'set memory policy',
    doc: "`set_mempolicy(mode, mask)` (linux.memoryPolicy): mode is the MPOL_* number ORed with its MPOL_F_* flags, nodes a plain decimal list (`0,1,7`, checked by the runtime; empty: no mask). Kept across execve, so exec'd processes get it too",
  },
  affinity: {
    stage: 'child', fields: ['cpus'], ref: true, purpose: 'set CPU affinity',
    doc: "`sched_setaffinity(0, mask)` with the CPUs of a plain decimal list (exec's process.execCPUAffinity: `initial` before `clone`, `final` right after `sync cgroup`)",
  },
  apparmor: {
    stage: 'child', fields: ['profile'], ref: true, purpose: 'apply AppArmor profile',
    doc: "write `exec <profile>` to `/proc/self/attr/apparmor/exec` (or `/proc/self/attr/exec`): the profile applies from execve. Only planned when the host has AppArmor; otherwise the runtime refuses the config",
  },
  selinux: {
    stage: 'child', fields: ['label'], ref: true, purpose: 'apply SELinux label',
    doc: "write label to `/proc/self/attr/exec` (from execve on). Only planned when the host has SELinux",
  },
  env: {
    stage: 'child', fields: ['K=V'], ref: false, purpose: 'env',
    doc: "add to the environment the process is executed with (in order)",
  },
  exec: {
    stage: 'child', fields: ['argc'], rest: { doc: 'argv...', min: 0 }, ref: true, purpose: 'exec',
    doc: "resolve argv[0]: with a `/` as is, otherwise through `PATH` of the env given by `env` steps (default `/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`). Must be found and executable, or error `exec: \"<name>\": executable file not found in $PATH` / `exec: \"<path>\": <strerror>`. Only resolved here; executed after `wait-start`. Without `HOME` in the environment, `HOME=<the user's home in the container's /etc/passwd, or />` is added first, as runc does",
  },
  created: {
    stage: 'child', fields: [], ref: false, purpose: 'created',
    doc: "write `created`, close the sync fds",
  },
  'wait-start': {
    stage: 'child', fields: [], ref: false, purpose: 'wait for start',
    doc: "open the fifo for writing through `/proc/self/fd/<its O_PATH fd>` (needs no search permission on state-dir, which the container's user may lack; without a /proc, `openat(state-dir fd, \"exec.fifo\")`), which blocks until `pocrun start` opens the read end; write one byte `0` and close both O_PATH fds. The written end stays open (`O_CLOEXEC`) until the execve: `pocrun start` reads to its end of file to know that the user's process runs before it runs the poststart hooks",
  },
  'close-fds': {
    stage: 'child', fields: ['first'], ref: false, purpose: 'close-fds',
    doc: "mark every fd >= first `FD_CLOEXEC` (`close_range(first, ~0U, CLOSE_RANGE_CLOEXEC)`)",
  },
  execve: {
    stage: 'child', fields: [], ref: false, purpose: 'execve',
    doc: "reset signal dispositions and mask to defaults (unless `seccomp-load` did), `execve` what `exec` resolved. On failure: message on stderr, exit 127",
  },
  'seccomp-init': {
    stage: 'seccomp', fields: ['action', 'errno', 'flags'], ref: true, purpose: 'build seccomp filter',
    doc: "`seccomp_init(action)`: action is one of `kill-thread` (SCMP_ACT_KILL and _KILL_THREAD), `kill-process`, `trap`, `errno`, `trace`, `allow`, `log`, `notify`; errno is the decimal return value of `errno`/`trace` (the runtime fills in EPERM, 1, when the config has none) and `-` for the others. flags: comma-separated, any of `tsync`, `log`, `spec-allow`, `wait-killable-recv` (SECCOMP_FILTER_FLAG_*), may be empty. Each action used is checked with `SECCOMP_GET_ACTION_AVAIL`",
  },
  'seccomp-arch': {
    stage: 'seccomp', fields: ['arch'], ref: true, purpose: 'build seccomp filter',
    doc: "`seccomp_arch_add(seccomp_arch_resolve_name(arch))`: libseccomp's names (`x86_64`, `x86`, `x32`, `aarch64`, ...: SCMP_ARCH_X86_64 lower-cased without the prefix); the native one is always there. An architecture this libseccomp does not know is an error",
  },
  'seccomp-rule': {
    stage: 'seccomp', fields: ['action', 'errno', 'syscall'], rest: { doc: 'cond...', min: 0, max: 6 }, ref: true, purpose: 'build seccomp filter',
    doc: "`seccomp_rule_add_array(action, nr, conds)` with 0 to 6 conditions, each one field `index:op:value:valueTwo` (decimal uint64; op one of `ne lt le eq ge gt masked-eq`; for `masked-eq` value is the mask and valueTwo the datum). A syscall name unknown to libseccomp on this architecture is skipped (as runc). The runtime emits one step per name; it leaves out rules whose action is the default one (libseccomp refuses them), and, as runc, splits a rule with several conditions on the same argument into one rule per condition (libseccomp cannot AND them)",
  },
  'seccomp-enosys': {
    stage: 'seccomp', fields: [], rest: { doc: 'name...', min: 0 }, ref: true, purpose: 'seccomp-enosys',
    doc: "every syscall name the profile mentions, whatever its action; for each architecture of the filter the helper resolves them (`seccomp_syscall_resolve_name_arch`) and keeps the highest number. `seccomp-compile` then puts a stub in front of libseccomp's program: a syscall numbered above that highest one returns ENOSYS instead of reaching the default action (x32 is x86_64 with bit 30 set, tested apart), so that a C library falls back from a syscall newer than the profile (clone3 to clone), as runc does. The runtime emits it unless the default action is `allow`, `log` or `trace`, or `errno` 38 already",
  },
  'seccomp-compile': {
    stage: 'seccomp', fields: [], ref: true, purpose: 'build seccomp filter',
    doc: "probe the flags (`seccomp(SECCOMP_SET_MODE_FILTER, flag, NULL)` must say EFAULT), export the BPF (`seccomp_export_bpf` into a memfd), release the libseccomp context. With a `notify` rule: adds SECCOMP_FILTER_FLAG_NEW_LISTENER (and _TSYNC_ESRCH with `tsync`), and needs `seccomp-listener` and the container state from a `sync` reply (create plans get it from `sync hooks`)",
  },
  'seccomp-load': {
    stage: 'seccomp', fields: [], optional: ['effective', 'permitted', 'inheritable'], ref: true, purpose: 'load seccomp filter',
    doc: "reset the signals (what `execve` would do), `seccomp(SECCOMP_SET_MODE_FILTER, flags, bpf)`. With a listener: send the container process state with the notify fd (below), close both. With the three capability masks (hex): `capset` them afterwards",
  },
} as const satisfies Record<string, StepDef>;

export type StepName = keyof typeof STEPS;

type Strings<T extends readonly string[]> = { -readonly [K in keyof T]: string };
// `rest` is any number of fields here: TypeScript types a literal with two spread arrays (hook's argv and env) as
// one rest element, so a minimum count in between cannot be checked; pocrun-init's table checks it.
type Body<D extends StepDef> = D extends { rest: object }
  ? [...Strings<D['fields']>, ...string[]]
  : D extends { optional: infer O extends readonly string[] }
    ? Strings<D['fields']> | [...Strings<O>, ...Strings<D['fields']>]
    : Strings<D['fields']>;
type Encoded<N extends StepName> = readonly [N, ...((typeof STEPS)[N] extends { ref: true } ? [...Body<(typeof STEPS)[N]>, ref: string] : Body<(typeof STEPS)[N]>)];

/** One step of a plan as it is sent: its name and its fields. The compiler checks each literal against STEPS. */
export type StepOf<N extends StepName> = Encoded<N>;
export type Step = { [N in StepName]: Encoded<N> }[StepName];

/** The field counts pocrun-init accepts (after the name): at least `min`, at most `max`, -1 for any number. */
export function fieldCounts(def: StepDef): { min: number; max: number } {
  const fixed = def.fields.length + (def.ref ? 1 : 0);
  if (def.rest) return { min: fixed + def.rest.min, max: def.rest.max === undefined ? -1 : fixed + def.rest.max };
  return { min: fixed, max: fixed + (def.optional?.length ?? 0) };
}

/** The fields column of PROTOCOL.md's tables: `[rows, cols,] ref`, `phase, argv..., ref`. */
export function fieldsText(def: StepDef): string {
  const parts = [...def.fields, ...(def.rest ? [def.rest.doc] : []), ...(def.ref ? ['ref'] : [])];
  return (def.optional?.length ? `[${def.optional.join(', ')},] ` : '') + parts.join(', ');
}

/** What a step was for, as a helper's error message says it; the pseudo-step `plan` (a malformed plan) is itself. */
export function stepPurpose(step: string): string {
  return Object.hasOwn(STEPS, step) ? STEPS[step as StepName].purpose : step;
}

/** Why a step does not fit its definition (an unknown name, a wrong field count), as pocrun-init would refuse it. */
export function stepMisfit(step: readonly string[]): string | undefined {
  const [name = '', ...fields] = step;
  if (!Object.hasOwn(STEPS, name)) return `unknown step ${JSON.stringify(name)}`;
  const { min, max } = fieldCounts(STEPS[name as StepName]);
  if (fields.length < min || (max >= 0 && fields.length > max)) return `${name}: ${fields.length} fields, expected ${min}${max === min ? '' : max < 0 ? ' or more' : ` to ${max}`}`;
  if (optionalGroupBroken(STEPS[name as StepName], fields.length)) return `${name}: ${fields.length} fields, the optional ones all or none`;
  return undefined;
}

function optionalGroupBroken(def: StepDef, count: number): boolean {
  if (!def.optional) return false;
  const fixed = def.fields.length + (def.ref ? 1 : 0);
  return count !== fixed && count !== fixed + def.optional.length;
}
