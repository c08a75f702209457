/**
 * poc's default seccomp profile, with the semantics of Docker's (moby's profiles/seccomp/default.json): every
 * syscall not allowed fails with EPERM; an allowlist of ordinary syscalls; the syscalls that reach past the
 * container allowed only with the capability that governs them (mount and unshare with CAP_SYS_ADMIN, ptrace
 * with CAP_SYS_PTRACE, ...); clone allowed without namespace flags, clone3 answered ENOSYS so that libc falls
 * back to clone, whose flags the filter can see; personality only for the harmless personas; socket for every
 * family but AF_VSOCK. The profile is written in Docker's format, so that seccompFromProfile resolves its
 * conditions for each container (its capabilities, the host's architecture and kernel) exactly as it resolves a
 * `--security-opt seccomp=FILE` profile. The data is plain lists: one line per family of syscalls.
 */
import type { DockerProfile, DockerRule } from './seccomp-profile.js';

const EPERM = 1;
const ENOSYS = 38;
/** Every namespace flag of clone(2): CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET = 0x7E020000. */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const AF_VSOCK = 40;
/** personality(2) values a program may ask for: PER_LINUX, PER_LINUX32, UNAME26, both, and 0xffffffff (query). */
const PERSONAS = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

const words = (text: string) => text.trim().split(/\s+/) as [string, ...string[]];

/** Allowed for every container, on every architecture (names a kernel does not know are left out by the runtime). */
const ALWAYS = words(`
  read readv pread64 preadv preadv2 write writev pwrite64 pwritev pwritev2 sendfile sendfile64 splice tee vmsplice
  copy_file_range readahead lseek _llseek
  open openat openat2 creat close close_range dup dup2 dup3 pipe pipe2 fcntl fcntl64 flock ioctl
  stat stat64 lstat lstat64 fstat fstat64 fstatat64 newfstatat statx statfs statfs64 fstatfs fstatfs64
  access faccessat faccessat2 getcwd chdir fchdir getdents getdents64 readlink readlinkat
  mkdir mkdirat mknod mknodat rmdir link linkat symlink symlinkat unlink unlinkat rename renameat renameat2
  chmod fchmod fchmodat chown chown32 fchown fchown32 fchownat lchown lchown32 umask
  truncate truncate64 ftruncate ftruncate64 fallocate fadvise64 fadvise64_64 fsync fdatasync sync syncfs sync_file_range
  utime utimes utimensat utimensat_time64 futimesat name_to_handle_at
  getxattr lgetxattr fgetxattr setxattr lsetxattr fsetxattr listxattr llistxattr flistxattr
  removexattr lremovexattr fremovexattr
  inotify_init inotify_init1 inotify_add_watch inotify_rm_watch fanotify_mark
  select _newselect pselect6 pselect6_time64 poll ppoll ppoll_time64
  epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_wait epoll_wait_old epoll_pwait epoll_pwait2
  eventfd eventfd2 signalfd signalfd4 timerfd_create timerfd_settime timerfd_settime64 timerfd_gettime timerfd_gettime64
  io_setup io_destroy io_submit io_cancel io_getevents io_pgetevents io_pgetevents_time64
  io_uring_setup io_uring_enter io_uring_register
  brk mmap mmap2 munmap mremap mprotect madvise mincore msync remap_file_pages mlock mlock2 mlockall munlock munlockall
  membarrier memfd_create memfd_secret pkey_alloc pkey_free pkey_mprotect
  execve execveat exit exit_group fork vfork wait4 waitid waitpid
  kill tkill tgkill pidfd_open pidfd_send_signal process_mrelease pause restart_syscall
  rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait
  rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack sigprocmask sigreturn
  getpid getppid gettid getpgid getpgrp setpgid getsid setsid set_tid_address
  getuid getuid32 geteuid geteuid32 getgid getgid32 getegid getegid32 getgroups getgroups32
  getresuid getresuid32 getresgid getresgid32 setuid setuid32 setgid setgid32 setreuid setreuid32 setregid setregid32
  setresuid setresuid32 setresgid setresgid32 setfsuid setfsuid32 setfsgid setfsgid32 setgroups setgroups32
  capget capset prctl seccomp landlock_create_ruleset landlock_add_rule landlock_restrict_self
  getrlimit ugetrlimit setrlimit prlimit64 getrusage getpriority setpriority ioprio_get ioprio_set
  sched_yield sched_getaffinity sched_setaffinity sched_getattr sched_setattr sched_getparam sched_setparam
  sched_getscheduler sched_setscheduler sched_get_priority_max sched_get_priority_min
  sched_rr_get_interval sched_rr_get_interval_time64 getcpu
  futex futex_time64 futex_waitv get_robust_list set_robust_list rseq get_thread_area set_thread_area
  time gettimeofday clock_gettime clock_gettime64 clock_getres clock_getres_time64 clock_nanosleep
  clock_nanosleep_time64 nanosleep alarm getitimer setitimer times adjtimex clock_adjtime clock_adjtime64
  timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
  uname sysinfo getrandom
  socketpair bind connect listen accept accept4 getsockname getpeername getsockopt setsockopt shutdown
  send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg recvmmsg_time64 socketcall
  ipc msgget msgsnd msgrcv msgctl semget semop semtimedop semtimedop_time64 semctl shmget shmat shmdt shmctl
  mq_open mq_unlink mq_timedsend mq_timedsend_time64 mq_timedreceive mq_timedreceive_time64 mq_notify mq_getsetattr
`);

/** Syscalls of one architecture family (Go's names, as Docker profiles write them). */
const BY_ARCH: [arches: string[], names: string][] = [
  [['ppc64le'], 'sync_file_range2 swapcontext'],
  [['arm', 'arm64'], 'arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls'],
  [['amd64', 'x32'], 'arch_prctl'],
  [['amd64', 'x32', 'x86'], 'modify_ldt'],
  [['s390', 's390x'], 's390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr'],
  [['riscv64'], 'riscv_flush_icache'],
];

/** Syscalls allowed only to a container that holds the capability the kernel checks for them. */
const BY_CAPABILITY: [cap: string, names: string][] = [
  ['CAP_DAC_READ_SEARCH', 'open_by_handle_at'],
  [
    'CAP_SYS_ADMIN',
    'bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr move_mount ' +
      'open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare',
  ],
  ['CAP_SYS_BOOT', 'reboot'],
  ['CAP_SYS_CHROOT', 'chroot'],
  ['CAP_SYS_MODULE', 'delete_module init_module finit_module'],
  ['CAP_SYS_PACCT', 'acct'],
  ['CAP_SYS_PTRACE', 'kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'],
  ['CAP_SYS_RAWIO', 'iopl ioperm'],
  ['CAP_SYS_TIME', 'settimeofday stime clock_settime clock_settime64'],
  ['CAP_SYS_TTY_CONFIG', 'vhangup'],
  ['CAP_SYS_NICE', 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node'],
  ['CAP_SYSLOG', 'syslog'],
  ['CAP_BPF', 'bpf'],
  ['CAP_PERFMON', 'perf_event_open'],
];

/** Native architecture → itself and the sub-architectures its kernel also runs (32-bit binaries on 64-bit). */
const ARCH_MAP: [string, string[]][] = [
  ['SCMP_ARCH_X86_64', ['SCMP_ARCH_X86', 'SCMP_ARCH_X32']],
  ['SCMP_ARCH_AARCH64', ['SCMP_ARCH_ARM']],
  ['SCMP_ARCH_MIPS64', ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64N32']],
  ['SCMP_ARCH_MIPS64N32', ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64']],
  ['SCMP_ARCH_MIPSEL64', ['SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64N32']],
  ['SCMP_ARCH_MIPSEL64N32', ['SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64']],
  ['SCMP_ARCH_S390X', ['SCMP_ARCH_S390']],
  ['SCMP_ARCH_RISCV64', []],
];

const allow = (names: string, extra: Partial<DockerRule> = {}): DockerRule => ({ names: words(names), action: 'SCMP_ACT_ALLOW', ...extra });

/** The profile in Docker's format; seccompFromProfile turns it into one container's linux.seccomp. */
export function defaultSeccompProfile(): DockerProfile {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    archMap: ARCH_MAP.map(([architecture, subArchitectures]) => ({ architecture, subArchitectures })),
    syscalls: [
      { names: ALWAYS, action: 'SCMP_ACT_ALLOW' },
      // ptrace lost its way out of seccomp (a tracer could change a checked syscall) in 4.8.
      allow('process_vm_readv process_vm_writev ptrace', { includes: { minKernel: '4.8' } }),
      allow('socket', { args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_NE' }] }),
      ...PERSONAS.map((value) => allow('personality', { args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }] })),
      ...BY_ARCH.map(([arches, names]) => allow(names, { includes: { arches } })),
      ...BY_CAPABILITY.map(([cap, names]) => allow(names, { includes: { caps: [cap] } })),
      // Without CAP_SYS_ADMIN: clone only without namespace flags (flags & mask == 0). s390 swaps the first two
      // arguments of clone.
      allow('clone', {
        args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, op: 'SCMP_CMP_MASKED_EQ' }],
        excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] },
      }),
      allow('clone', {
        args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, op: 'SCMP_CMP_MASKED_EQ' }],
        includes: { arches: ['s390', 's390x'] },
        excludes: { caps: ['CAP_SYS_ADMIN'] },
      }),
      // clone3's flags are in memory, out of the filter's sight: ENOSYS makes glibc fall back to clone.
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
    ],
  };
}
