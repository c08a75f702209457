/*
 * The pod sandbox's process for the CRI tests (the test builds it into a local image, offline): what a
 * Kubernetes pause container does. It holds the pod's namespaces, reaps the orphans of a shared pid namespace
 * (it is their pid 1), and exits 0 on SIGINT or SIGTERM, which containerd sends to stop the sandbox.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

int main(void)
{
	struct sigaction stop = {.sa_handler = quit}, child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGCHLD, &child, NULL);
	for (;;)
		pause();
}
