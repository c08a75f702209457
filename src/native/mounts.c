/*
 * The filesystem steps: rootfs, mounts, devices, links, pivot_root/chroot, masked and read-only paths, console.
 *
 * Every container path is resolved under the root fd with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so
 * a symlink in the rootfs cannot lead outside it; mounts are made onto /proc/self/fd/N of the resolved O_PATH
 * fd after checking where that fd really is (CVE-2021-30465).
 */
#include "pocrun-init.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sched.h>
#include <termios.h>
#include <unistd.h>

#define PROPAGATION (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE)
#define ATIME (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)
/* The per-mount flags a bind mount's remount applies (the others belong to the file system): all of them are
 * re-applied, as runc re-applies every flag but MS_REC, MS_REMOUNT and MS_BIND. */
#define BIND_REMOUNT (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME | MS_NOSYMFOLLOW | ATIME)

static void need_root(void)
{
	if (G.root_fd < 0)
		die(EINVAL, "no rootfs step before %s", cur->argv[0]);
}

/* Opens a container path inside the root; -1 with errno. */
static int in_root(const char *path, int flags)
{
	need_root();
	while (*path == '/')
		path++;
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	int fd, tries = 0;
	do
		fd = syscall(SYS_openat2, G.root_fd, *path ? path : ".", &how, sizeof how);
	while (fd < 0 && (errno == EAGAIN || errno == EINTR) && ++tries < 100);
	return fd;
}

/*
 * The O_PATH fd of a container path, creating what is missing: directories (0755) on the way, and at the end a
 * directory or (file) an empty file. Each component is resolved in the root again after it is made.
 */
static int ensure_at_depth(const char *path, bool file, const char *what, int depth);

static int ensure(const char *path, bool file, const char *what)
{
	return ensure_at_depth(path, file, what, 0);
}

/*
 * A dangling symlink met on the way is followed inside the root, as the kernel's RESOLVE_IN_ROOT would: its
 * target (absolute targets from the root, relative ones from the link's directory) plus the rest of the path is
 * made instead, so `/evil -> /tmp/x` makes /tmp/x in the rootfs, never on the host.
 */
static int follow_dangling(int parent, const char *dir, const char *name, const char *rest, bool file, const char *what, int depth)
{
	char target[PATH_MAX], next[PATH_MAX];
	ssize_t n = readlinkat(parent, name, target, sizeof target - 1);
	if (n < 0)
		return -1;
	target[n] = 0;
	if (depth >= 40)
		die(ELOOP, "%s: /%s: %s", what, dir, strerror(ELOOP));
	int len = target[0] == '/' ? snprintf(next, sizeof next, "%s/%s", target, rest)
				   : snprintf(next, sizeof next, "/%s/%s/%s", dir, target, rest);
	if (len >= (int)sizeof next)
		die(ENAMETOOLONG, "%s: %s", what, strerror(ENAMETOOLONG));
	if (parent != G.root_fd)
		close(parent);
	return ensure_at_depth(next, file, what, depth + 1);
}

static int ensure_at_depth(const char *path, bool file, const char *what, int depth)
{
	int fd = in_root(path, O_PATH);
	if (fd >= 0)
		return fd;
	if (errno != ENOENT)
		die(errno, "%s: %s: %s", what, path, strerror(errno));
	char buf[PATH_MAX];
	const char *src = path;
	while (*src == '/')
		src++;
	if (snprintf(buf, sizeof buf, "%s", src) >= (int)sizeof buf)
		die(ENAMETOOLONG, "%s: %s", what, strerror(ENAMETOOLONG));
	int parent = G.root_fd;
	char *p = buf;
	for (;;) {
		char *end = p + strcspn(p, "/"), *rest = end;
		while (*rest == '/')
			rest++;
		bool last = !*rest;
		char save = *end;
		*end = 0;
		fd = in_root(buf, O_PATH);
		if (fd < 0 && errno == ENOENT) {
			if (last && file) {
				int f = openat(parent, p, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0644);
				if (f < 0 && errno != EEXIST)
					die(errno, "%s: create /%s: %s", what, buf, strerror(errno));
				if (f >= 0)
					close(f);
			} else if (mkdirat(parent, p, 0755) < 0 && errno != EEXIST) {
				die(errno, "%s: mkdir /%s: %s", what, buf, strerror(errno));
			}
			fd = in_root(buf, O_PATH);
			if (fd < 0 && errno == ENOENT) {
				/* The name exists but does not resolve: a dangling symlink. */
				char dir[PATH_MAX];
				snprintf(dir, sizeof dir, "%.*s", (int)(p - buf), buf);
				size_t dl = strlen(dir);
				while (dl > 0 && dir[dl - 1] == '/')
					dir[--dl] = 0;
				fd = follow_dangling(parent, dir, p, last ? "" : rest, file, what, depth);
				if (fd >= 0)
					return fd;
				errno = ENOENT;
			}
		}
		if (fd < 0)
			die(errno, "%s: /%s: %s", what, buf, strerror(errno));
		if (parent != G.root_fd)
			close(parent);
		*end = save;
		if (last)
			return fd;
		parent = fd;
		p = rest;
	}
}

/* The parent directory's fd (made if missing) and the last component of a container path. */
static int ensure_parent(const char *path, const char *what, char *name, size_t size)
{
	char buf[PATH_MAX];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		die(ENAMETOOLONG, "%s: %s", what, strerror(ENAMETOOLONG));
	size_t n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = 0;
	char *slash = strrchr(buf, '/');
	const char *base = slash ? slash + 1 : buf;
	if (!*base || !strcmp(base, ".") || !strcmp(base, "..") || strlen(base) >= size)
		die(EINVAL, "%s: invalid path %s", what, path);
	strcpy(name, base);
	if (slash)
		*slash = 0;
	else
		buf[0] = 0;
	return ensure(buf[0] ? buf : "/", false, what);
}

/* Refuses an fd that is not under the rootfs (a path swapped under us while we resolved it). */
static void check_in_root(int fd, const char *what, const char *path)
{
	char link[32], real[PATH_MAX];
	ssize_t n = readlink(fdpath(link, fd), real, sizeof real - 1);
	if (n < 0)
		die(errno, "%s: readlink %s: %s", what, link, strerror(errno));
	real[n] = 0;
	size_t rl = strlen(G.root_path);
	if (strcmp(G.root_path, "/") && (strncmp(real, G.root_path, rl) || (real[rl] && real[rl] != '/')))
		die(EXDEV, "%s: %s resolved to %s, outside the rootfs %s", what, path, real, G.root_path);
}

static int open_checked(const char *path, const char *what)
{
	int fd = in_root(path, O_PATH);
	if (fd < 0)
		die(errno, "%s: %s: %s", what, path, strerror(errno));
	check_in_root(fd, what, path);
	return fd;
}

static unsigned long statvfs_to_ms(unsigned long f)
{
	unsigned long m = 0;
	if (f & ST_RDONLY) m |= MS_RDONLY;
	if (f & ST_NOSUID) m |= MS_NOSUID;
	if (f & ST_NODEV) m |= MS_NODEV;
	if (f & ST_NOEXEC) m |= MS_NOEXEC;
	if (f & ST_NOATIME) m |= MS_NOATIME;
	if (f & ST_NODIRATIME) m |= MS_NODIRATIME;
	if (f & ST_RELATIME) m |= MS_RELATIME;
	if (!(m & (MS_NOATIME | MS_RELATIME)))
		m |= MS_STRICTATIME;
	return m;
}

/*
 * MS_REMOUNT|MS_BIND of the mount fd is on. In a user namespace the flags the mount got from a more privileged
 * namespace are locked: on EPERM keep them (they only restrict more) and try again.
 */
static int remount_bind(int fd, unsigned long flags)
{
	char p[32];
	fdpath(p, fd);
	if (!mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | flags, NULL))
		return 0;
	if (errno != EPERM)
		return -1;
	struct statvfs sv;
	if (fstatvfs(fd, &sv) < 0) {
		errno = EPERM;
		return -1;
	}
	unsigned long now = statvfs_to_ms(sv.f_flag);
	unsigned long retry = flags | (now & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME));
	retry = (retry & ~ATIME) | (now & ATIME);
	if (retry == flags) {
		errno = EPERM;
		return -1;
	}
	return mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | retry, NULL);
}

static const char *propagation_name(unsigned long fl)
{
	bool rec = fl & MS_REC;
	if (fl & MS_SHARED) return rec ? "rshared" : "shared";
	if (fl & MS_SLAVE) return rec ? "rslave" : "slave";
	if (fl & MS_PRIVATE) return rec ? "rprivate" : "private";
	if (fl & MS_UNBINDABLE) return rec ? "runbindable" : "unbindable";
	return "?";
}

void step_propagation(const struct step *s)
{
	const char *target = s->argv[1];
	unsigned long fl = parse_u64(s->argv[2], 10, "flags");
	char what[4200], p[32];
	snprintf(what, sizeof what, "make %s %s", target, propagation_name(fl));
	if (G.root_fd < 0) {
		/* Before `rootfs`: a path of the helper's mount namespace (the runtime's "/"). */
		if (mount(NULL, target, NULL, fl, NULL) < 0)
			die(errno, "%s: %s", what, strerror(errno));
		return;
	}
	int fd = open_checked(target, what);
	if (mount(NULL, fdpath(p, fd), NULL, fl, NULL) < 0)
		die(errno, "%s: %s", what, strerror(errno));
	close(fd);
}

void step_rootfs(const struct step *s)
{
	const char *path = s->argv[1];
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		die(errno, "bind the rootfs %s onto itself: %s", path, strerror(errno));
	step_root_open(s);
}

/*
 * The rootfs of a container without a mount namespace of its own (config-linux.md: it shares the runtime's): the
 * root fd, and nothing mounted. Binding the rootfs onto itself (step_rootfs) would be a mount in the host's
 * namespace, and no pivot_root can follow.
 */
void step_root_open(const struct step *s)
{
	const char *path = s->argv[1];
	xclose(&G.root_fd);
	G.root_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (G.root_fd < 0)
		die(errno, "open the rootfs %s: %s", path, strerror(errno));
	char link[32];
	ssize_t n = readlink(fdpath(link, G.root_fd), G.root_path, sizeof G.root_path - 1);
	if (n < 0)
		die(errno, "readlink %s: %s", link, strerror(errno));
	G.root_path[n] = 0;
}

/*
 * procfs and sysfs only on a real directory (CVE-2019-19921, CVE-2023-27561): through a symlink in the rootfs
 * they would land elsewhere inside it, where path-based rules (maskedPaths given as /proc/..., an LSM profile)
 * would no longer cover them.
 */
static void refuse_symlinks(const char *dest, const char *what)
{
	const char *rel = dest;
	while (*rel == '/')
		rel++;
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS};
	int fd = syscall(SYS_openat2, G.root_fd, *rel ? rel : ".", &how, sizeof how);
	if (fd < 0 && errno == ELOOP)
		die(ELOOP, "%s: %s is or goes through a symlink in the rootfs: refused", what, dest);
	if (fd >= 0)
		close(fd);
}

/*
 * tmpcopyup (runc's and crun's extension, which podman uses for --read-only): the files that were in the
 * directory before the tmpfs covered it are copied into the tmpfs: modes, owners, links, devices; everything
 * opened relative to the two directory fds, never following a symlink.
 */
static void copy_file(int from, int to, const char *name, const struct stat *st, const char *what)
{
	int in = openat(from, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		die(errno, "%s: tmpcopyup: open %s: %s", what, name, strerror(errno));
	int out = openat(to, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		die(errno, "%s: tmpcopyup: create %s: %s", what, name, strerror(errno));
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(errno, "%s: tmpcopyup: read %s: %s", what, name, strerror(errno));
		if (n == 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				die(errno, "%s: tmpcopyup: write %s: %s", what, name, strerror(errno));
			off += w;
		}
	}
	if (fchown(out, st->st_uid, st->st_gid) < 0 || fchmod(out, st->st_mode & 07777) < 0)
		die(errno, "%s: tmpcopyup: owner and mode of %s: %s", what, name, strerror(errno));
	close(in);
	close(out);
}

static void copy_tree(int from, int to, const char *what, int depth)
{
	if (depth > 128)
		die(ELOOP, "%s: tmpcopyup: directories nested too deep", what);
	int dfd = dup(from);
	DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
	if (!dir)
		die(errno, "%s: tmpcopyup: read the directory: %s", what, strerror(errno));
	struct dirent *e;
	while ((errno = 0, e = readdir(dir))) {
		const char *name = e->d_name;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		struct stat st;
		if (fstatat(from, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die(errno, "%s: tmpcopyup: stat %s: %s", what, name, strerror(errno));
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(to, name, 0700) < 0)
				die(errno, "%s: tmpcopyup: mkdir %s: %s", what, name, strerror(errno));
			int a = openat(from, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int b = openat(to, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (a < 0 || b < 0)
				die(errno, "%s: tmpcopyup: open directory %s: %s", what, name, strerror(errno));
			copy_tree(a, b, what, depth + 1);
			if (fchown(b, st.st_uid, st.st_gid) < 0 || fchmod(b, st.st_mode & 07777) < 0)
				die(errno, "%s: tmpcopyup: owner and mode of %s: %s", what, name, strerror(errno));
			close(a);
			close(b);
		} else if (S_ISREG(st.st_mode)) {
			copy_file(from, to, name, &st, what);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(from, name, target, sizeof target - 1);
			if (n < 0)
				die(errno, "%s: tmpcopyup: readlink %s: %s", what, name, strerror(errno));
			target[n] = 0;
			if (symlinkat(target, to, name) < 0 || fchownat(to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
				die(errno, "%s: tmpcopyup: symlink %s: %s", what, name, strerror(errno));
		} else {
			if (mknodat(to, name, st.st_mode, st.st_rdev) < 0 || fchownat(to, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
				die(errno, "%s: tmpcopyup: mknod %s: %s", what, name, strerror(errno));
		}
	}
	if (errno)
		die(errno, "%s: tmpcopyup: read the directory: %s", what, strerror(errno));
	closedir(dir);
}

struct mount_attr_ {
	uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/* A bind mount takes its own flags (ro, nosuid, ...) only through a remount of the new mount itself. */
static void bind_remount(const char *dest, unsigned long fl, const char *what)
{
	if (!(fl & BIND_REMOUNT))
		return;
	int top = open_checked(dest, what);
	if (remount_bind(top, fl & BIND_REMOUNT) < 0)
		die(errno, "%s: remount with its flags: %s", what, strerror(errno));
	close(top);
}

static void set_propagation(const char *dest, unsigned long fl, const char *what)
{
	char p[32];
	if (!(fl & PROPAGATION))
		return;
	int top = open_checked(dest, what);
	if (mount(NULL, fdpath(p, top), NULL, fl & (PROPAGATION | MS_REC), NULL) < 0)
		die(errno, "%s: make it %s: %s", what, propagation_name(fl & (PROPAGATION | MS_REC)), strerror(errno));
	close(top);
}

void step_mount(const struct step *s)
{
	const char *src = s->argv[1], *dest = s->argv[2], *fstype = s->argv[3], *data = s->argv[5], *kind = s->argv[6];
	unsigned long fl = parse_u64(s->argv[4], 10, "flags");
	bool bind = fl & MS_BIND;
	char what[8400], p[32];
	if (bind)
		snprintf(what, sizeof what, "bind %s on %s", src, dest);
	else if (!strcmp(src, fstype) || !*src)
		snprintf(what, sizeof what, "mount %s on %s", fstype, dest);
	else
		snprintf(what, sizeof what, "mount %s (%s) on %s", src, fstype, dest);

	bool file, copyup = !strcmp(kind, "copyup");
	if (!strcmp(kind, "dir") || copyup) {
		file = false;
	} else if (!strcmp(kind, "file")) {
		file = true;
	} else if (!strcmp(kind, "auto")) {
		struct stat st;
		file = false;
		if (bind) {
			if (stat(src, &st) < 0)
				die(errno, "%s: stat %s: %s", what, src, strerror(errno));
			file = !S_ISDIR(st.st_mode);
		}
	} else {
		die(EINVAL, "%s: unknown kind \"%s\" (dir, file, auto or copyup)", what, kind);
	}

	if (!bind && (!strcmp(fstype, "proc") || !strcmp(fstype, "sysfs")))
		refuse_symlinks(dest, what);
	int fd = ensure(dest, file, what);
	check_in_root(fd, what, dest);
	if (bind) {
		if (mount(src, fdpath(p, fd), NULL, MS_BIND | (fl & MS_REC), NULL) < 0)
			die(errno, "%s: %s", what, strerror(errno));
		bind_remount(dest, fl, what);
	} else {
		/* The directory the new mount covers, still readable through this fd after the mount (tmpcopyup). */
		int under = copyup ? openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
		if (copyup && under < 0)
			die(errno, "%s: tmpcopyup: open %s: %s", what, dest, strerror(errno));
		if (mount(src, fdpath(p, fd), fstype, fl & ~(PROPAGATION | MS_REC), *data ? data : NULL) < 0)
			die(errno, "%s: %s", what, strerror(errno));
		if (copyup) {
			int top = open_checked(dest, what);
			int onto = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (onto < 0)
				die(errno, "%s: tmpcopyup: open the new mount: %s", what, strerror(errno));
			copy_tree(under, onto, what, 0);
			close(onto);
			close(top);
			close(under);
		}
	}
	close(fd);
	set_propagation(dest, fl, what);
}

/*
 * Id-mapped bind mounts (config.md, "idmap" and "ridmap"). The mapping is a user namespace, and both it and the
 * detached copy of the source tree are made in the parent stage, in the host's namespaces: the id-mapping
 * needs CAP_SYS_ADMIN over the tree's owner and over the user namespace, which the container's root has over
 * neither. The child attaches each tree where it belongs with move_mount, as runc does.
 */
static int idmap_trees[64];
static int n_idmap_trees;

/* A user namespace with these maps, held by an fd. Its only process is a child that waits for the fd to be
 * opened, and exits when the pipe it reads closes (also if this process dies first). */
static int make_userns(const char *uid_map, const char *gid_map, const char *what)
{
	int ready[2], hold[2];
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0)
		die(errno, "%s: pipe: %s", what, strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die(errno, "%s: fork: %s", what, strerror(errno));
	if (pid == 0) {
		char c;
		close(ready[0]);
		close(hold[1]);
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(1);
		if (write(ready[1], "u", 1) != 1)
			_exit(1);
		while (read(hold[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	char c, path[64];
	ssize_t n;
	while ((n = read(ready[0], &c, 1)) < 0 && errno == EINTR)
		;
	close(ready[0]);
	if (n != 1)
		die(EPERM, "%s: cannot make a user namespace for the mapping", what);
	const char *maps[2][2] = {{"uid_map", uid_map}, {"gid_map", gid_map}};
	for (int i = 0; i < 2; i++) {
		char writing[4300];
		snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, maps[i][0]);
		snprintf(writing, sizeof writing, "%s: write %s", what, maps[i][0]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			die(errno, "%s: open %s: %s", what, path, strerror(errno));
		write_all(fd, maps[i][1], strlen(maps[i][1]), writing); /* the kernel takes a map in one write or none */
		close(fd);
	}
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
	int userns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		die(errno, "%s: open %s: %s", what, path, strerror(errno));
	close(hold[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return userns;
}

void step_idmap_tree(const struct step *s)
{
	/* source, rbind (0/1), ridmap (0/1), uid_map, gid_map, ref */
	const char *src = s->argv[1];
	bool rbind = !strcmp(s->argv[2], "1"), ridmap = !strcmp(s->argv[3], "1");
	char what[4200];
	snprintf(what, sizeof what, "id-mapped bind of %s", src);
	if (n_idmap_trees == sizeof idmap_trees / sizeof *idmap_trees)
		die(E2BIG, "%s: more than %zu id-mapped mounts", what, sizeof idmap_trees / sizeof *idmap_trees);
	int tree = syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (rbind ? AT_RECURSIVE : 0));
	if (tree < 0)
		die(errno, "%s: open_tree: %s", what, strerror(errno));
	int userns = make_userns(s->argv[4], s->argv[5], what);
	struct mount_attr_ attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns};
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | (ridmap ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
		die(errno, "%s: %s%s", what, strerror(errno),
		    errno == EINVAL ? " (the source's filesystem may not support id-mapped mounts)" : "");
	close(userns);
	idmap_trees[n_idmap_trees++] = tree;
}

void step_move_tree(const struct step *s)
{
	/* index, dest, flags, ref: the tree of the index-th idmap-tree step */
	long index = (long)parse_u64(s->argv[1], 10, "tree index");
	const char *dest = s->argv[2];
	unsigned long fl = parse_u64(s->argv[3], 10, "flags");
	char what[4200];
	snprintf(what, sizeof what, "id-mapped bind on %s", dest);
	if (index >= n_idmap_trees)
		die(EINVAL, "%s: no idmap-tree step %ld", what, index);
	struct stat st;
	if (fstat(idmap_trees[index], &st) < 0)
		die(errno, "%s: fstat: %s", what, strerror(errno));
	int fd = ensure(dest, !S_ISDIR(st.st_mode), what);
	check_in_root(fd, what, dest);
	if (syscall(SYS_move_mount, idmap_trees[index], "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		die(errno, "%s: move_mount: %s", what, strerror(errno));
	close(fd);
	xclose(&idmap_trees[index]);
	bind_remount(dest, fl, what);
	set_propagation(dest, fl, what);
}

void step_setattr(const struct step *s)
{
	const char *target = s->argv[1];
	struct mount_attr_ attr = {
		.attr_set = parse_u64(s->argv[2], 10, "attributes"),
		.attr_clr = parse_u64(s->argv[3], 10, "attributes"),
	};
	char what[4200];
	snprintf(what, sizeof what, "set the attributes of %s", target);
	int fd = open_checked(target, what);
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
		die(errno, "%s (set %#llx, clear %#llx): %s", what, (unsigned long long)attr.attr_set,
		    (unsigned long long)attr.attr_clr, strerror(errno));
	close(fd);
}

void step_remount(const struct step *s)
{
	const char *dest = s->argv[1];
	unsigned long fl = parse_u64(s->argv[2], 10, "flags");
	char what[4200];
	snprintf(what, sizeof what, "remount %s", dest);
	int fd = open_checked(dest, what);
	if (remount_bind(fd, fl & ~(MS_REMOUNT | MS_BIND)) < 0)
		die(errno, "%s%s: %s", what, fl & MS_RDONLY ? " read-only" : "", strerror(errno));
	close(fd);
}

void step_mknod(const struct step *s)
{
	const char *dest = s->argv[1], *type = s->argv[2];
	unsigned major = parse_u64(s->argv[3], 10, "major"), minor = parse_u64(s->argv[4], 10, "minor");
	mode_t perm = parse_u64(s->argv[5], 8, "mode") & 07777;
	uid_t uid = (uid_t)parse_s64(s->argv[6], "uid");
	gid_t gid = (gid_t)parse_s64(s->argv[7], "gid");
	mode_t fmt;
	if (!strcmp(type, "c") || !strcmp(type, "u"))
		fmt = S_IFCHR;
	else if (!strcmp(type, "b"))
		fmt = S_IFBLK;
	else if (!strcmp(type, "p"))
		fmt = S_IFIFO;
	else
		die(EINVAL, "mknod %s: unknown device type \"%s\" (c, b, u or p)", dest, type);
	dev_t dev = fmt == S_IFIFO ? 0 : makedev(major, minor);
	char what[4200], name[NAME_MAX + 1];
	snprintf(what, sizeof what, "mknod %s", dest);
	int dir = ensure_parent(dest, what, name, sizeof name);
	mode_t old = umask(0);
	int r = mknodat(dir, name, fmt | perm, dev);
	if (r < 0 && errno == EEXIST) {
		struct stat st;
		if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IFMT) == fmt &&
		    (fmt == S_IFIFO || st.st_rdev == dev))
			r = 0; /* already there */
		else if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
			 unlinkat(dir, name, 0) == 0)
			r = mknodat(dir, name, fmt | perm, dev); /* something else: replace it */
		else
			errno = EEXIST;
	}
	umask(old);
	if (r < 0)
		die(errno, "%s: %s", what, strerror(errno));
	if (fchownat(dir, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		die(errno, "chown %s to %d:%d: %s", dest, (int)uid, (int)gid, strerror(errno));
	close(dir);
}

void step_bind_dev(const struct step *s)
{
	const char *host = s->argv[1], *dest = s->argv[2];
	char what[8400], p[32];
	snprintf(what, sizeof what, "bind %s on %s", host, dest);
	int fd = ensure(dest, true, what);
	check_in_root(fd, what, dest);
	if (mount(host, fdpath(p, fd), NULL, MS_BIND, NULL) < 0)
		die(errno, "%s: %s", what, strerror(errno));
	close(fd);
}

void step_symlink(const struct step *s)
{
	const char *target = s->argv[1], *link = s->argv[2];
	char what[8400], name[NAME_MAX + 1], old[PATH_MAX];
	snprintf(what, sizeof what, "symlink %s -> %s", link, target);
	int dir = ensure_parent(link, what, name, sizeof name);
	if (symlinkat(target, dir, name) < 0) {
		if (errno != EEXIST)
			die(errno, "%s: %s", what, strerror(errno));
		ssize_t n = readlinkat(dir, name, old, sizeof old - 1);
		if (n < 0)
			die(EEXIST, "%s: %s exists and is not a symlink", what, link);
		old[n] = 0;
		if (strcmp(old, target))
			die(EEXIST, "%s: %s exists and points to %s", what, link, old);
	}
	close(dir);
}

/*
 * The init's stdio that is the host's /dev/null (engines give it as stdin: conmon, the shim) is opened again on
 * the container's own /dev/null once its root is entered, as runc's reOpenDevNull: a file on a mount outside
 * the container's mount namespace is what criu cannot checkpoint ("Can't lookup mount=N for fd=0
 * path=/dev/null"). Without a usable /dev/null in the rootfs nothing changes.
 */
static void reopen_dev_null(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	struct stat null_st, st;
	if (fstat(fd, &null_st) == 0 && S_ISCHR(null_st.st_mode) && null_st.st_rdev == makedev(1, 3)) {
		for (int i = 0; i < 3; i++) {
			if (fstat(i, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == null_st.st_rdev &&
			    (st.st_dev != null_st.st_dev || st.st_ino != null_st.st_ino) && dup3(fd, i, 0) < 0)
				die(errno, "reopen /dev/null as fd %d: %s", i, strerror(errno));
		}
	}
	close(fd);
}

void step_pivot_root(const struct step *s)
{
	(void)s;
	need_root();
	int old = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (old < 0)
		die(errno, "open /: %s", strerror(errno));
	if (fchdir(G.root_fd) < 0)
		die(errno, "chdir %s: %s", G.root_path, strerror(errno));
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		die(errno, "pivot_root %s: %s", G.root_path, strerror(errno));
	/* The old root is now stacked on the new one: cut it loose without propagating the unmount. */
	if (fchdir(old) < 0)
		die(errno, "chdir to the old root: %s", strerror(errno));
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		die(errno, "make the old root rslave: %s", strerror(errno));
	if (umount2(".", MNT_DETACH) < 0)
		die(errno, "unmount the old root: %s", strerror(errno));
	if (chdir("/") < 0)
		die(errno, "chdir /: %s", strerror(errno));
	close(old);
	strcpy(G.root_path, "/");
	reopen_dev_null();
}

/* Makes the working directory (the rootfs) this process's root, and goes to it. */
static void chroot_cwd(void)
{
	if (chroot(".") < 0)
		die(errno, "chroot %s: %s", G.root_path, strerror(errno));
	if (chdir("/") < 0)
		die(errno, "chdir /: %s", strerror(errno));
	strcpy(G.root_path, "/");
}

void step_chroot(const struct step *s)
{
	(void)s;
	need_root();
	if (fchdir(G.root_fd) < 0)
		die(errno, "chdir %s: %s", G.root_path, strerror(errno));
	if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
		die(errno, "move %s to /: %s", G.root_path, strerror(errno));
	chroot_cwd();
	reopen_dev_null();
}

/*
 * Enters the root opened by root-open with chroot alone, as runc does without a mount namespace: no pivot_root
 * (there is no namespace of the container's own to pivot in) and no MS_MOVE of the rootfs onto the host's "/".
 */
void step_chroot_only(const struct step *s)
{
	(void)s;
	need_root();
	if (fchdir(G.root_fd) < 0)
		die(errno, "chdir %s: %s", G.root_path, strerror(errno));
	chroot_cwd();
}

/* The path itself (not what a final symlink points to), -1 when it is missing (skipped). */
static int open_nofollow(const char *path, const char *what, struct stat *st)
{
	int fd = in_root(path, O_PATH | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return -1;
		die(errno, "%s: %s", what, strerror(errno));
	}
	check_in_root(fd, what, path);
	if (fstat(fd, st) < 0)
		die(errno, "%s: stat: %s", what, strerror(errno));
	if (S_ISLNK(st->st_mode))
		die(ELOOP, "%s: it is a symbolic link", what);
	return fd;
}

void step_mask(const struct step *s)
{
	const char *path = s->argv[1];
	char what[4200], p[32], q[32];
	struct stat st;
	snprintf(what, sizeof what, "mask %s", path);
	int fd = open_nofollow(path, what, &st);
	if (fd < 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		if (mount("tmpfs", fdpath(p, fd), "tmpfs", MS_RDONLY, NULL) < 0)
			die(errno, "%s with a read-only tmpfs: %s", what, strerror(errno));
	} else {
		if (G.null_fd < 0) {
			struct stat ns;
			G.null_fd = in_root("/dev/null", O_PATH | O_NOFOLLOW);
			if (G.null_fd < 0)
				die(errno, "%s: open /dev/null: %s", what, strerror(errno));
			if (fstat(G.null_fd, &ns) < 0)
				die(errno, "%s: stat /dev/null: %s", what, strerror(errno));
			if (!S_ISCHR(ns.st_mode) || ns.st_rdev != makedev(1, 3))
				die(EPERM, "%s: /dev/null is not the null device (char 1:3)", what);
		}
		if (mount(fdpath(q, G.null_fd), fdpath(p, fd), NULL, MS_BIND, NULL) < 0)
			die(errno, "%s with /dev/null: %s", what, strerror(errno));
	}
	close(fd);
}

void step_readonly(const struct step *s)
{
	const char *path = s->argv[1];
	char what[4200], p[32];
	struct stat st;
	struct statvfs sv;
	snprintf(what, sizeof what, "make %s read-only", path);
	int fd = open_nofollow(path, what, &st);
	if (fd < 0)
		return;
	fdpath(p, fd);
	if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
		die(errno, "%s: bind it on itself: %s", what, strerror(errno));
	close(fd);
	int top = open_nofollow(path, what, &st);
	if (top < 0)
		die(ENOENT, "%s: it vanished", what);
	if (fstatvfs(top, &sv) < 0)
		die(errno, "%s: statvfs: %s", what, strerror(errno));
	unsigned long keep = statvfs_to_ms(sv.f_flag) & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NODIRATIME | ATIME);
	if (remount_bind(top, MS_RDONLY | keep) < 0)
		die(errno, "%s: %s", what, strerror(errno));
	close(top);
}

void step_remount_root(const struct step *s)
{
	unsigned long fl = parse_u64(s->argv[1], 10, "flags");
	need_root();
	if (remount_bind(G.root_fd, fl & ~(MS_REMOUNT | MS_BIND)) < 0)
		die(errno, "remount /%s: %s", fl & MS_RDONLY ? " read-only" : "", strerror(errno));
}

int console_pty(bool container_ptmx, unsigned short rows, unsigned short cols, unsigned *ptn_out, int *master_out)
{
	if (G.console_sock < 0)
		die(EINVAL, "no console-connect step before console");
	int master = container_ptmx ? in_root("/dev/ptmx", O_RDWR | O_NOCTTY) : open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		die(errno, "open /dev/ptmx: %s", strerror(errno));
	int unlock = 0;
	unsigned ptn;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		die(errno, "unlock the pty: %s", strerror(errno));
	if (ioctl(master, TIOCGPTN, &ptn) < 0)
		die(errno, "get the pty number: %s", strerror(errno));
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		die(errno, "open the pty slave /dev/pts/%u: %s", ptn, strerror(errno));
	if (rows && cols) {
		struct winsize ws = {.ws_row = rows, .ws_col = cols};
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			die(errno, "set the console size: %s", strerror(errno));
	}
	*ptn_out = ptn;
	*master_out = master;
	return slave;
}

void console_send_master(int master, unsigned ptn)
{
	/* The master goes to the console socket with the slave's name as the payload, as runc sends it. */
	char name[32];
	int len = snprintf(name, sizeof name, "/dev/pts/%u", ptn);
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = {.iov_base = name, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof control.buf};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof master);
	ssize_t sent;
	do
		sent = sendmsg(G.console_sock, &msg, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	if (sent < 0)
		die(errno, "send the pty master to the console socket: %s", strerror(errno));
	close(master);
	xclose(&G.console_sock);
}

void step_console(const struct step *s)
{
	unsigned short rows = 0, cols = 0;
	if (s->argc == 3)
		die(EINVAL, "console takes ref, or rows, cols and ref");
	if (s->argc == 4) {
		rows = parse_u64(s->argv[1], 10, "rows");
		cols = parse_u64(s->argv[2], 10, "columns");
	}
	/* exec (no rootfs step): setns has already put us in the container's mount namespace and root; its
	 * /dev/console belongs to the init and is left alone. */
	bool exec = G.root_fd < 0;
	unsigned ptn;
	int master;
	int slave = console_pty(!exec, rows, cols, &ptn, &master);
	console_send_master(master, ptn);
	char name[32];
	snprintf(name, sizeof name, "/dev/pts/%u", ptn);

	if (!exec) {
		char p[32], q[32];
		/* Never through a symlink (CVE-2025-52565): the console lands on /dev/console itself or nowhere. */
		refuse_symlinks("/dev/console", "bind the console on /dev/console");
		int console = ensure("/dev/console", true, "bind the console on /dev/console");
		check_in_root(console, "bind the console on /dev/console", "/dev/console");
		if (mount(fdpath(q, slave), fdpath(p, console), NULL, MS_BIND, NULL) < 0)
			die(errno, "bind %s on /dev/console: %s", name, strerror(errno));
		close(console);
	}

	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			die(errno, "dup2 the console to fd %d: %s", i, strerror(errno));
	if (slave > 2)
		close(slave);
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		die(errno, "make %s the controlling terminal: %s", name, strerror(errno));
}
