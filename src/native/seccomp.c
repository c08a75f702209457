/*
 * The seccomp steps (PROTOCOL.md, "seccomp"): build the filter with libseccomp during create, compile it to BPF
 * before `created` (so that a bad rule is a create error), and load it with seccomp(2) as the last step before
 * execve. The helper loads the BPF itself rather than through seccomp_load(): libseccomp would set
 * no_new_privs (the container may not want it) and may free memory after the load; here the syscalls after
 * the load are exactly: sendmsg + close (with a notify listener), capset (without no_new_privs), execve.
 */
#include "pocrun-init.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#endif
#ifndef SECCOMP_FILTER_FLAG_NEW_LISTENER
#define SECCOMP_FILTER_FLAG_NEW_LISTENER (1UL << 3)
#endif
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

static scmp_filter_ctx ctx;
static unsigned long filter_flags;
/* The filter's architectures (libseccomp's tokens: AUDIT_ARCH_* but for x32) and, from seccomp-enosys, the
 * highest syscall number the profile names on each (-1: none). */
static struct {
	uint32_t token;
	long highest;
} archs[32];
static int narchs;
static bool enosys_stub;
static bool uses_notify;
static struct sock_fprog prog;   /* from seccomp-compile */
static int listener_sock = -1;   /* from seccomp-listener */
static char *listener_head;      /* the container process state without pid and state, no closing brace */

static void remember_arch(uint32_t token)
{
	for (int i = 0; i < narchs; i++)
		if (archs[i].token == token)
			return;
	if (narchs == sizeof archs / sizeof *archs)
		die(E2BIG, "more than %zu seccomp architectures", sizeof archs / sizeof *archs);
	archs[narchs].token = token;
	archs[narchs++].highest = -1;
}

static const struct {
	const char *name;
	unsigned long flag;
} flag_names[] = {
	{"tsync", SECCOMP_FILTER_FLAG_TSYNC},
	{"log", SECCOMP_FILTER_FLAG_LOG},
	{"spec-allow", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
	{"wait-killable-recv", SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV},
};

static uint32_t parse_action(const char *word, const char *errno_field)
{
	if (!strcmp(word, "kill-thread"))
		return SCMP_ACT_KILL_THREAD;
	if (!strcmp(word, "kill-process"))
		return SCMP_ACT_KILL_PROCESS;
	if (!strcmp(word, "trap"))
		return SCMP_ACT_TRAP;
	if (!strcmp(word, "allow"))
		return SCMP_ACT_ALLOW;
	if (!strcmp(word, "log"))
		return SCMP_ACT_LOG;
	if (!strcmp(word, "notify"))
		return SCMP_ACT_NOTIFY;
	if (!strcmp(word, "errno"))
		return SCMP_ACT_ERRNO((uint32_t)parse_u64(errno_field, 10, "errno"));
	if (!strcmp(word, "trace"))
		return SCMP_ACT_TRACE((uint32_t)parse_u64(errno_field, 10, "errno"));
	die(EINVAL, "unknown seccomp action \"%s\"", word);
}

/* The kernel's own check: is this action available (SECCOMP_GET_ACTION_AVAIL)? */
static void check_action(uint32_t action, const char *word)
{
	static uint32_t checked[16];
	static unsigned nchecked;
	uint32_t ret = action & SECCOMP_RET_ACTION_FULL;
	for (unsigned i = 0; i < nchecked; i++)
		if (checked[i] == ret)
			return;
	if (syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &ret) < 0)
		die(errno, "seccomp action %s is not supported by this kernel: %s", word, strerror(errno));
	if (nchecked < sizeof checked / sizeof *checked)
		checked[nchecked++] = action & SECCOMP_RET_ACTION_FULL;
}

void step_seccomp_init(const struct step *s)
{
	/* default-action, errno, flags (comma-separated), ref */
	if (ctx)
		die(EINVAL, "a second seccomp-init");
	uint32_t def = parse_action(s->argv[1], s->argv[2]);
	check_action(def, s->argv[1]);
	filter_flags = 0;
	char *list = strdup(s->argv[3]);
	if (!list)
		die(ENOMEM, "out of memory");
	for (char *save = NULL, *f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < sizeof flag_names / sizeof *flag_names; i++)
			if (!strcmp(flag_names[i].name, f))
				break;
		if (i == sizeof flag_names / sizeof *flag_names)
			die(EINVAL, "unknown seccomp flag \"%s\"", f);
		filter_flags |= flag_names[i].flag;
	}
	free(list);
	if (!(ctx = seccomp_init(def)))
		die(EINVAL, "seccomp_init: cannot create a filter with default action %s", s->argv[1]);
	narchs = 0;
	enosys_stub = false;
	remember_arch(seccomp_arch_native());
	/* The BPF is loaded by us (no no_new_privs from libseccomp); a syscall of another architecture than the
	 * ones listed is killed (libseccomp's default), as with runc. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
}

static void need_ctx(void)
{
	if (!ctx)
		die(EINVAL, "no seccomp-init before this step");
}

void step_seccomp_arch(const struct step *s)
{
	need_ctx();
	uint32_t arch = seccomp_arch_resolve_name(s->argv[1]);
	if (!arch)
		die(EINVAL, "architecture %s is not known to this libseccomp", s->argv[1]);
	int r = seccomp_arch_add(ctx, arch);
	if (r < 0 && r != -EEXIST)
		die(-r, "add architecture %s: %s", s->argv[1], strerror(-r));
	remember_arch(arch);
}

void step_seccomp_enosys(const struct step *s)
{
	/* name..., ref: every syscall the profile names, whatever its action */
	need_ctx();
	enosys_stub = true;
	for (int a = 0; a < narchs; a++)
		for (int i = 1; i < s->argc - 1; i++) {
			/* Negative: unknown here, or a pseudo number (a call multiplexed through socketcall or ipc). */
			int nr = seccomp_syscall_resolve_name_arch(archs[a].token, s->argv[i]);
			if (nr > archs[a].highest)
				archs[a].highest = nr;
		}
}

/*
 * The ENOSYS stub, put in front of libseccomp's program. A syscall newer than every syscall the profile names
 * (numbered above the highest of them, per architecture) gets ENOSYS rather than the default action: the
 * profile's author could not have meant to deny what did not exist yet, and ENOSYS is what makes a C library
 * fall back to the older call (clone3 to clone, faccessat2 to faccessat), where EPERM makes it fail. runc does
 * the same (libcontainer/seccomp/patchbpf). x32 shares x86_64's AUDIT_ARCH and sets bit 30 of its numbers.
 *
 *	ld [4]                      arch
 *	jeq ARCH_i, section_i       one per architecture with a highest number
 *	ja filter
 * section_i:
 *	ld [0]                      nr
 *	(x86_64: jset X32_BIT, x32 test or filter)
 *	jgt HIGHEST_i, enosys, filter
 *	...
 * enosys:
 *	ret ERRNO(ENOSYS)
 * filter:                      libseccomp's program
 */
#define X32_SYSCALL_BIT 0x40000000u
enum { TO_NEXT = -1, TO_ENOSYS = -2, TO_FILTER = -3 };
#define STUB_MAX 256 /* 3 + 5 per architecture at most, and jumps of up to 255 */

struct stub {
	struct sock_filter insn[STUB_MAX];
	int jt[STUB_MAX], jf[STUB_MAX]; /* absolute targets (or TO_*), resolved by stub_finish */
	int len;
};

static int emit(struct stub *st, uint16_t code, uint32_t k, int jt, int jf)
{
	if (st->len == STUB_MAX)
		die(E2BIG, "the seccomp ENOSYS stub is too long");
	st->insn[st->len] = (struct sock_filter){.code = code, .k = k};
	st->jt[st->len] = jt;
	st->jf[st->len] = jf;
	return st->len++;
}

static long highest_of(uint32_t token)
{
	for (int i = 0; i < narchs; i++)
		if (archs[i].token == token)
			return archs[i].highest;
	return -1;
}

/* One architecture's test: numbers above `highest` get ENOSYS; -1 sends every call to the filter. */
static void emit_highest(struct stub *st, long highest)
{
	if (highest < 0)
		emit(st, BPF_JMP | BPF_JA, 0, TO_FILTER, TO_NEXT);
	else
		emit(st, BPF_JMP | BPF_JGT | BPF_K, (uint32_t)highest, TO_ENOSYS, TO_FILTER);
}

static void stub_finish(struct stub *st)
{
	int enosys = emit(st, BPF_RET | BPF_K, SCMP_ACT_ERRNO(ENOSYS), TO_NEXT, TO_NEXT);
	for (int pc = 0; pc < st->len; pc++) {
		int targets[2] = {st->jt[pc], st->jf[pc]};
		for (int t = 0; t < 2; t++) {
			if (BPF_CLASS(st->insn[pc].code) != BPF_JMP)
				continue;
			int to = targets[t] == TO_NEXT ? pc + 1 : targets[t] == TO_ENOSYS ? enosys : targets[t] == TO_FILTER ? st->len : targets[t];
			int off = to - (pc + 1);
			if (BPF_OP(st->insn[pc].code) == BPF_JA) {
				if (t == 0)
					st->insn[pc].k = off;
			} else if (off < 0 || off > 255) {
				die(E2BIG, "the seccomp ENOSYS stub needs a jump of %d", off);
			} else if (t == 0) {
				st->insn[pc].jt = off;
			} else {
				st->insn[pc].jf = off;
			}
		}
	}
}

static void build_enosys_stub(struct stub *st)
{
	uint32_t natives[32];
	int nnative = 0;
	for (int i = 0; i < narchs; i++) {
		uint32_t audit = archs[i].token == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : archs[i].token;
		bool seen = false;
		for (int j = 0; j < nnative; j++)
			seen = seen || natives[j] == audit;
		if (!seen)
			natives[nnative++] = audit;
	}
	st->len = 0;
	emit(st, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), TO_NEXT, TO_NEXT);
	int first_jeq = st->len;
	for (int j = 0; j < nnative; j++)
		emit(st, BPF_JMP | BPF_JEQ | BPF_K, natives[j], TO_NEXT /* the section, set below */, TO_NEXT);
	emit(st, BPF_JMP | BPF_JA, 0, TO_FILTER, TO_NEXT);
	for (int j = 0; j < nnative; j++) {
		st->jt[first_jeq + j] = st->len;
		emit(st, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), TO_NEXT, TO_NEXT);
		if (natives[j] != SCMP_ARCH_X86_64) {
			emit_highest(st, highest_of(natives[j]));
			continue;
		}
		/* x86_64 and x32: without x32 in the filter, x32 calls go to the filter (its bad-arch action). */
		bool x32 = highest_of(SCMP_ARCH_X32) >= 0;
		int jset = emit(st, BPF_JMP | BPF_JSET | BPF_K, X32_SYSCALL_BIT, TO_FILTER, TO_NEXT);
		emit_highest(st, highest_of(SCMP_ARCH_X86_64));
		if (x32) {
			st->jt[jset] = st->len;
			emit_highest(st, highest_of(SCMP_ARCH_X32));
		}
	}
	stub_finish(st);
}

static enum scmp_compare parse_op(const char *op)
{
	static const struct {
		const char *name;
		enum scmp_compare op;
	} ops[] = {
		{"ne", SCMP_CMP_NE}, {"lt", SCMP_CMP_LT}, {"le", SCMP_CMP_LE}, {"eq", SCMP_CMP_EQ},
		{"ge", SCMP_CMP_GE}, {"gt", SCMP_CMP_GT}, {"masked-eq", SCMP_CMP_MASKED_EQ},
	};
	for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
		if (!strcmp(ops[i].name, op))
			return ops[i].op;
	die(EINVAL, "unknown seccomp operator \"%s\"", op);
}

void step_seccomp_rule(const struct step *s)
{
	/* action, errno, syscall, cond..., ref; cond = index:op:value:valueTwo */
	need_ctx();
	const char *name = s->argv[3];
	uint32_t action = parse_action(s->argv[1], s->argv[2]);
	int ncond = s->argc - 5;
	if (ncond > 6)
		die(EINVAL, "syscall %s: %d conditions, at most 6", name, ncond);
	struct scmp_arg_cmp conds[6];
	for (int i = 0; i < ncond; i++) {
		char buf[128], *save = NULL;
		snprintf(buf, sizeof buf, "%s", s->argv[4 + i]);
		char *idx = strtok_r(buf, ":", &save), *op = strtok_r(NULL, ":", &save);
		char *a = strtok_r(NULL, ":", &save), *b = strtok_r(NULL, ":", &save);
		if (!idx || !op || !a || !b)
			die(EINVAL, "syscall %s: malformed condition \"%s\"", name, s->argv[4 + i]);
		conds[i] = (struct scmp_arg_cmp){
			.arg = (unsigned)parse_u64(idx, 10, "argument index"),
			.op = parse_op(op),
			.datum_a = parse_u64(a, 10, "value"),
			.datum_b = parse_u64(b, 10, "valueTwo"),
		};
	}
	/* As runc: a name this libseccomp does not know on this architecture is skipped. */
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return;
	check_action(action, s->argv[1]);
	if (action == SCMP_ACT_NOTIFY)
		uses_notify = true;
	int r = seccomp_rule_add_array(ctx, action, nr, ncond, conds);
	if (r < 0)
		die(-r, "add the rule for syscall %s: %s", name, strerror(-r));
}

void step_seccomp_listener(const struct step *s)
{
	/* path, head, ref: connected in the parent stage, where the path is the host's */
	const char *path = s->argv[1];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		die(ENAMETOOLONG, "connect %s: %s", path, strerror(ENAMETOOLONG));
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die(errno, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		die(errno, "connect to the seccomp agent at %s: %s", path, strerror(errno));
	if (listener_sock >= 0)
		close(listener_sock);
	listener_sock = fd;
	free(listener_head);
	if (!(listener_head = strdup(s->argv[2])))
		die(ENOMEM, "out of memory");
}

/* Probes a flag the way libseccomp does: with a NULL program the kernel answers EFAULT if it knows the flag. */
static void check_flags(unsigned long flags)
{
	for (size_t i = 0; i < sizeof flag_names / sizeof *flag_names; i++) {
		if (!(flags & flag_names[i].flag))
			continue;
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag_names[i].flag, NULL) == 0 || errno != EFAULT)
			die(EINVAL, "seccomp flag %s is not supported by this kernel", flag_names[i].name);
	}
}

void step_seccomp_compile(const struct step *s)
{
	(void)s;
	need_ctx();
	if (uses_notify) {
		if (listener_sock < 0)
			die(EINVAL, "SCMP_ACT_NOTIFY without a seccomp-listener step");
		filter_flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
		if (filter_flags & SECCOMP_FILTER_FLAG_TSYNC)
			filter_flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
	}
	check_flags(filter_flags & ~(SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC_ESRCH));
	int mfd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
	if (mfd < 0)
		die(errno, "memfd_create: %s", strerror(errno));
	int r = seccomp_export_bpf(ctx, mfd);
	if (r < 0)
		die(-r, "compile the seccomp filter: %s", strerror(-r));
	struct stat st;
	if (fstat(mfd, &st) < 0)
		die(errno, "fstat: %s", strerror(errno));
	if (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) || st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS)
		die(E2BIG, "the seccomp filter has %lld bytes of BPF (at most %d instructions fit)", (long long)st.st_size,
		    BPF_MAXINSNS);
	struct sock_filter *insns = malloc(st.st_size);
	if (!insns)
		die(ENOMEM, "out of memory");
	if (pread(mfd, insns, st.st_size, 0) != st.st_size)
		die(errno, "read the seccomp filter: %s", strerror(errno));
	close(mfd);
	size_t len = st.st_size / sizeof(struct sock_filter);
	if (enosys_stub) {
		static struct stub stub;
		build_enosys_stub(&stub);
		if (len + stub.len > BPF_MAXINSNS)
			die(E2BIG, "the seccomp filter with its ENOSYS stub has %zu BPF instructions (at most %d fit)",
			    len + stub.len, BPF_MAXINSNS);
		if (!(insns = realloc(insns, (len + stub.len) * sizeof *insns)))
			die(ENOMEM, "out of memory");
		memmove(insns + stub.len, insns, len * sizeof *insns);
		memcpy(insns, stub.insn, stub.len * sizeof *insns);
		len += stub.len;
	}
	prog.len = len;
	prog.filter = insns;
	seccomp_release(ctx);
	ctx = NULL;
	if (uses_notify && !G.state)
		die(EINVAL, "the seccomp agent needs the container state: the plan has no sync reply that carries it");
}

/* One sendmsg with the fd, then the rest of the payload if the socket took only part of it. msg is made before
 * the filter is loaded (no allocation after it). */
static void send_to_agent(int notify_fd, char *msg, int len)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {.iov_base = msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &notify_fd, sizeof(int));
	size_t sent = 0;
	while (sent < (size_t)len) {
		ssize_t n = sendmsg(listener_sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(errno, "send the seccomp notify fd to the agent: %s", strerror(errno));
		sent += n;
		iov.iov_base = msg + sent;
		iov.iov_len = len - sent;
		mh.msg_control = NULL; /* the fd goes with the first part only */
		mh.msg_controllen = 0;
	}
}

void step_seccomp_load(const struct step *s)
{
	/* [effective, permitted, inheritable,] ref */
	if (!prog.filter)
		die(EINVAL, "no seccomp-compile before seccomp-load");
	bool set_caps = s->argc == 5;
	uint64_t eff = 0, prm = 0, inh = 0;
	if (set_caps) {
		eff = parse_u64(s->argv[1], 16, "capability mask");
		prm = parse_u64(s->argv[2], 16, "capability mask");
		inh = parse_u64(s->argv[3], 16, "capability mask");
	}
	char *msg = NULL;
	int len = 0;
	if (uses_notify && (len = asprintf(&msg, "%s,\"pid\":%d,\"state\":%s}", listener_head, G.host_pid, G.state)) < 0)
		die(ENOMEM, "out of memory");
	/* execve's signal reset, done now: after the load, only the syscalls listed at the top may run. */
	reset_signals();
	G.signals_reset = true;

	int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, filter_flags, &prog);
	if (fd < 0)
		die(errno, "load the seccomp filter: %s%s", strerror(errno),
		    errno == EACCES ? " (without noNewPrivileges this needs CAP_SYS_ADMIN)" : "");
	if (uses_notify) {
		send_to_agent(fd, msg, len);
		close(fd);
		close(listener_sock);
		listener_sock = -1;
	}
	if (set_caps) {
		/* Drop the CAP_SYS_ADMIN the caps step kept for the load. */
		if (set_capabilities(eff, prm, inh) < 0)
			die(errno, "capset after loading the seccomp filter: %s (without noNewPrivileges the filter must allow capset)",
			    strerror(errno));
	}
}

/* `pocrun-init --seccomp-archs NAME...`: prints the names a filter on this machine can take, one a line (this
 * libseccomp knows them and they go with the native architecture: a big-endian one does not), so that
 * `pocrun features` tells what this build supports rather than what the spec lists. */
int print_known_seccomp_archs(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		uint32_t arch = seccomp_arch_resolve_name(argv[i]);
		scmp_filter_ctx probe = arch ? seccomp_init(SCMP_ACT_ALLOW) : NULL;
		if (!probe)
			continue;
		int r = seccomp_arch_add(probe, arch);
		if (r == 0 || r == -EEXIST)
			printf("%s\n", argv[i]);
		seccomp_release(probe);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
