//go:build linux && cgo

// The entry into the user's kiln user namespace, before the Go runtime
// starts: setns(CLONE_NEWUSER) needs a single-threaded process, which a Go
// program never is once its runtime runs (runc's nsexec and podman's
// pkg/rootless join the same way, from a constructor).
//
// When _KILN_ROOTLESS_JOIN is "PID START" (the pause process and its start
// time from /proc/PID/stat), this joins that process's user and mount
// namespaces, returns to the working directory, checks it is root there,
// and removes the variable so that nothing kiln starts joins again. Any
// failure prints one line and exits 125.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOIN_ENV "_KILN_ROOTLESS_JOIN"

static void join_fail(const char *what, int err)
{
	fprintf(stderr, "kiln: join the rootless user namespace: %s: %s\n", what, strerror(err));
	_exit(125);
}

// proc_start reads the start time (field 22) of /proc/PID/stat; 0 when the
// process is gone or a zombie.
static unsigned long long proc_start(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	// The command name may hold spaces and ')': the fields follow its last ')'.
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ')
		return 0;
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return 0;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (p == NULL)
			return 0;
		p++;
	}
	return strtoull(p, NULL, 10);
}

static int open_ns(int pid, const char *ns)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/%s", pid, ns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		join_fail(path, errno);
	return fd;
}

__attribute__((constructor)) static void kiln_rootless_join(void)
{
	const char *v = getenv(JOIN_ENV);
	if (v == NULL || *v == '\0')
		return;
	int pid;
	unsigned long long start;
	if (sscanf(v, "%d %llu", &pid, &start) != 2 || pid <= 0)
		join_fail(JOIN_ENV " is malformed", EINVAL);
	int userfd = open_ns(pid, "user");
	int mntfd = open_ns(pid, "mnt");
	// Checked after opening: the descriptors hold the namespaces of the
	// process that has this start time, not of one that reused its pid.
	if (proc_start(pid) != start)
		join_fail("the pause process is gone", ESRCH);
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof cwd) == NULL)
		join_fail("getcwd", errno);
	if (setns(userfd, CLONE_NEWUSER) != 0)
		join_fail("setns user", errno);
	if (setns(mntfd, CLONE_NEWNS) != 0)
		join_fail("setns mnt", errno);
	close(userfd);
	close(mntfd);
	// setns(CLONE_NEWNS) moved the working directory to the namespace's
	// root; the namespace sees the host's tree, so the old one is there.
	if (chdir(cwd) != 0)
		join_fail(cwd, errno);
	if (setresgid(0, 0, 0) != 0)
		join_fail("setresgid 0", errno);
	if (setresuid(0, 0, 0) != 0)
		join_fail("setresuid 0", errno);
	if (geteuid() != 0)
		join_fail("not root in the user namespace", EPERM);
	unsetenv(JOIN_ENV);
}
