/*
 * The `seccomp` step (issue 3). It will build the filter with libseccomp from the step's fields (default action,
 * architectures, flags, then the syscall rules) and load it with seccomp_load(), or hand the listener fd to the
 * runtime for SCMP_ACT_NOTIFY; the Makefile then links -lseccomp.
 *
 * Until then a plan that asks for a filter fails, rather than run the container unconfined.
 */
#include "pocrun-init.h"

void step_seccomp(const struct step *s)
{
	(void)s;
	die(ENOSYS, "seccomp filters are not supported yet by this pocrun-init");
}
