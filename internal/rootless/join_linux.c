//go:build linux && cgo

// The entry into the user's kiln user namespace, before the Go runtime
// starts: setns(CLONE_NEWUSER) needs a single-threaded process, which a Go
// program never is once its runtime runs (runc's nsexec and podman's
// pkg/rootless join the same way, from a constructor).
//
// Two ways in:
//
//   - The steady state (kiln_rootless_enter): an ordinary user's kiln finds
//     the live pause process of its runtime directory and joins it here,
//     as podman's constructor does, so that a rootless command is one
//     process, not a Go start that re-executes kiln. Anything unexpected
//     (no runtime directory, no pause.pid, a dead pause process, an unusual
//     environment) leaves the process as it is: enter.go's Go path then
//     does the work, or gives the error, and re-executes kiln with:
//
//   - _KILN_ROOTLESS_JOIN="PID START" (the pause process and its start
//     time from /proc/PID/stat), set by that Go path: join that process's
//     namespaces or fail, and remove the variable so that nothing kiln
//     starts joins again. Any failure prints one line and exits 125.
//
// Either way the process ends in the pause process's user and mount
// namespaces, in its working directory, as root (0:0) there.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "join_linux.h"

#define JOIN_ENV "_KILN_ROOTLESS_JOIN"
#define UID_ENV "_KILN_ROOTLESS_UID" // rootless.EnvUID
#define PAUSE_FILE "pause.pid"        // rootless.pauseFile

// Set by the steady-state entry, for enter.go (joinedEarly): a setenv here
// would not reach Go, which reads the environment the process started
// with. kiln_rootless_joined_uid is the user's uid on the host, -1 when
// the constructor did not enter.
int kiln_rootless_joined_uid = -1;
char kiln_rootless_joined_rt[PATH_MAX];

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
	return open(path, O_RDONLY | O_CLOEXEC);
}

// join enters the user and mount namespaces of the process pid that
// started at start. Until the user namespace is joined nothing has
// changed, and a failure returns -1 (or, strict, exits); after it there is
// no way back, and any failure exits.
static int join(int pid, unsigned long long start, int strict)
{
	int userfd = open_ns(pid, "user");
	int mntfd = open_ns(pid, "mnt");
	int err = errno;
	const char *what = "open the pause process's namespaces";
	char cwd[PATH_MAX];
	if (userfd < 0 || mntfd < 0)
		goto fail;
	// Checked after opening: the descriptors hold the namespaces of the
	// process that has this start time, not of one that reused its pid.
	err = ESRCH, what = "the pause process is gone";
	if (proc_start(pid) != start)
		goto fail;
	what = "getcwd";
	if (getcwd(cwd, sizeof cwd) == NULL) {
		err = errno;
		goto fail;
	}
	what = "setns user";
	if (setns(userfd, CLONE_NEWUSER) != 0) {
		err = errno;
		goto fail;
	}
	close(userfd);
	if (setns(mntfd, CLONE_NEWNS) != 0)
		join_fail("setns mnt", errno);
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
	return 0;
fail:
	if (userfd >= 0)
		close(userfd);
	if (mntfd >= 0)
		close(mntfd);
	if (strict)
		join_fail(what, err);
	return -1;
}

// clean_abs: path is absolute and as Go's filepath.Clean leaves it (no
// empty, "." or ".." element, no trailing slash), and not "/": then
// path + "/kiln" is what filepath.Join(path, "kiln") gives.
static int clean_abs(const char *path)
{
	if (path[0] != '/' || path[1] == '\0')
		return 0;
	for (const char *s = path; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		const char *e = s + 1; // an element starts after each '/'
		size_t dots = strspn(e, ".");
		if (*e == '/' || *e == '\0' || (dots <= 2 && (e[dots] == '/' || e[dots] == '\0')))
			return 0;
	}
	return 1;
}

// own_dir is enter.go's ownDir on an open directory: a directory (the
// O_NOFOLLOW open refused a symlink) of uid that no one else may write.
static int own_dir(int fd, uid_t uid)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == uid && (st.st_mode & 022) == 0;
}

int kiln_rootless_runtime_dir(uid_t uid, char *rt, size_t size)
{
	char fallback[64];
	const char *base = getenv("XDG_RUNTIME_DIR");
	if (base == NULL || base[0] != '/') {
		snprintf(fallback, sizeof fallback, "/tmp/kiln-run-%u", (unsigned)uid);
		base = fallback;
	}
	int n = snprintf(rt, size, "%s/kiln", base);
	if (!clean_abs(base) || n < 0 || (size_t)n >= size)
		return -1;
	int fd = -1, basefd = open(base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (basefd >= 0 && own_dir(basefd, uid))
		fd = openat(basefd, "kiln", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (basefd >= 0)
		close(basefd);
	if (fd >= 0 && !own_dir(fd, uid)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

// read_pause reads "PID START\n" (as pause.go writes it) from the pause
// file of the runtime directory rtfd.
static int read_pause(int rtfd, int *pid, unsigned long long *start)
{
	char buf[64];
	int fd = openat(rtfd, PAUSE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *end;
	errno = 0;
	long p = strtol(buf, &end, 10);
	if (buf[0] < '0' || buf[0] > '9' || *end != ' ' || end[1] < '0' || end[1] > '9' || p <= 0 || p > INT_MAX)
		return -1;
	*start = strtoull(end + 1, &end, 10);
	// 0 is what proc_start says of a zombie: never a start time to match.
	if (errno != 0 || *start == 0 || (*end != '\n' && *end != '\0'))
		return -1;
	*pid = (int)p;
	return 0;
}

// kiln_rootless_enter is the steady-state entry (see the top). Processes
// that must not join are left alone: root, a process already of rootless
// kiln (the user's uid in its environment), a set-id one, and kiln's own
// re-executions (argv[0] "kiln-...": the pause process, whose namespace
// is not mapped yet when it starts, the sandbox init, monitors, the
// reaper), which Go's main dispatches before rootless.Enter.
static void kiln_rootless_enter(const char *arg0)
{
	uid_t uid = getuid();
	if (geteuid() == 0 || uid != geteuid() || getgid() != getegid() || getenv(UID_ENV) != NULL ||
	    arg0 == NULL || strncmp(arg0, "kiln-", 5) == 0)
		return;
	char rt[PATH_MAX];
	int rtfd = kiln_rootless_runtime_dir(uid, rt, sizeof rt);
	if (rtfd < 0)
		return;
	int pid;
	unsigned long long start;
	int ok = read_pause(rtfd, &pid, &start) == 0;
	close(rtfd);
	if (!ok || join(pid, start, 0) != 0)
		return;
	memcpy(kiln_rootless_joined_rt, rt, sizeof rt);
	kiln_rootless_joined_uid = (int)uid;
}

// glibc calls constructors with main's arguments; elsewhere argv is not
// known and only the Go path enters.
__attribute__((constructor)) static void kiln_rootless_join(int argc, char **argv, char **envp)
{
	(void)envp;
	const char *v = getenv(JOIN_ENV);
	if (v == NULL || *v == '\0') {
#ifdef __GLIBC__
		kiln_rootless_enter(argc > 0 && argv != NULL ? argv[0] : NULL);
#else
		(void)argc, (void)argv;
#endif
		return;
	}
	int pid;
	unsigned long long start;
	if (sscanf(v, "%d %llu", &pid, &start) != 2 || pid <= 0)
		join_fail(JOIN_ENV " is malformed", EINVAL);
	join(pid, start, 1);
	unsetenv(JOIN_ENV);
}
