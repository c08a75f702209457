/*
 * Field 3 (the state letter) and field 22 (the start time, in clock ticks since boot) of /proc/<pid>/stat, as
 * src/common/proc.ts readProcStat reads them: the start time tells the process a record names from a later one
 * that got its pid. The command name (field 2) may hold spaces and parentheses, so the fields are counted from
 * its last ')'. One definition for the native front (front/container.c) and poc-monitor.c, separate programs:
 * hence a header of static functions.
 */
#ifndef POCRUN_PROC_STAT_H
#define POCRUN_PROC_STAT_H
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* False when the process is gone (or its stat unreadable); else *STATE and START_TIME (SIZE bytes, NUL-ended). */
static bool proc_stat_fields(pid_t pid, char *state, char *start_time, size_t size)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return false;
	p += 2; /* ") " then the state, field 3 */
	*state = *p;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return false;
	size_t len = strcspn(p, " ");
	if (len >= size)
		return false;
	memcpy(start_time, p, len);
	start_time[len] = 0;
	return true;
}
#endif
