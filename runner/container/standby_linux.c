//go:build linux && cgo

// The standby monitor of `kiln run`, started before the client's own Go
// runtime: from exec to main, a kiln process spends some 20 ms (the
// runtime, every package's init, their page faults), and the monitor, which
// spends as much again before it can take its container, is on the start's
// critical path. Started here, its start-up overlaps the client's.
//
// Only root's `kiln [--root DIR] run [FLAGS] IMAGE ...` whose flags this
// reads as attached, without terminal or stdin, does anything here; it does
// what Store.NewStandby does (standby.go): the status pipe, the attach
// socket pair and the monitor's stdin pipe, the monitor executed from a
// sealed view of the binary (a detached read-only overlay, as
// runner.SealedExe makes it), in a session of its own, with nothing else
// inherited. Go adopts it (earlyStandby) only when the command's parsed
// flags, the store root and the network mode are those it was started
// for; otherwise it is closed and exits, so a misreading here costs time,
// never a behaviour. Any failure leaves it to Go.
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "standby_linux.h"

#define MONITOR_ARG0 "kiln-monitor"         // monitorArg0
#define PRESTART_ENV "_KILN_PRESTART_INIT=1" // runner.PrestartEnv
#define ROOTLESS_ENV "_KILN_ROOTLESS_UID"    // rootless.EnvUID

int kiln_standby_pid = -1;
int kiln_standby_fds[3] = {-1, -1, -1};
char kiln_standby_root[PATH_MAX];
char kiln_standby_net[256];

static int streq(const char *a, const char *b) { return strcmp(a, b) == 0; }

// value_flag reports whether a (without "=VALUE") is a flag of run's that
// takes a value; net is set when it names the network.
static int value_flag(const char *a, int *net)
{
	static const char *const flags[] = {
		"--name", "-e", "--env", "--env-file", "-v", "--volume", "--mount", "-w", "--workdir", "-u", "--user",
		"--entrypoint", "-p", "--publish", "--expose", "-m", "--memory", "--memory-swap", "--pull", "--platform",
		"-h", "--hostname", "-l", "--label", "--label-file", "--cap-add", "--cap-drop", "--cpus", "-c",
		"--cpu-shares", "--cpuset-cpus", "--pids-limit", "--add-host", "--dns", "--dns-search", "--dns-option",
		"--tmpfs", "--ulimit", "--security-opt", "--shm-size", "--sysctl", "--stop-signal", "--stop-timeout",
		"--network-alias", "--ip", "--log-driver", "--log-opt", "--device", "--gpus", "--cidfile", "--isolation",
		"--health-cmd", "--health-interval", "--health-retries", "--health-start-interval", "--health-start-period",
		"--health-timeout", "--restart",
		NULL,
	};
	*net = streq(a, "--network") || streq(a, "--net");
	if (*net)
		return 1;
	for (int i = 0; flags[i]; i++)
		if (streq(a, flags[i]))
			return 1;
	return 0;
}

// bool_flag reports whether a is a boolean flag of run's that leaves the
// run attached, without terminal or stdin.
static int bool_flag(const char *a)
{
	static const char *const flags[] = {
		"--rm", "--privileged", "--read-only", "--init", "--no-healthcheck", "-P", "--publish-all", "--tls-verify", NULL,
	};
	for (int i = 0; flags[i]; i++)
		if (streq(a, flags[i]))
			return 1;
	return 0;
}

// kiln_standby_flag is how parse reads the flag name ("--name", "-e"):
// 1 a flag that takes a value, 2 a boolean one it skips, 0 one that leaves
// the run to Go (see container.EarlyStandbyFlag).
int kiln_standby_flag(const char *name)
{
	int net;
	if (value_flag(name, &net))
		return 1;
	return bool_flag(name) ? 2 : 0;
}

// parse reads argv as `kiln [--root DIR] run FLAGS IMAGE ...` with no flag
// of a terminal, stdin or detach: the store root and the network mode.
static int parse(int argc, char **argv, const char **root, const char **net)
{
	int i = 1;
	*root = getenv("KILN_ROOT");
	if (!*root || !**root)
		*root = "/var/lib/kiln"; // rootless.DefaultRoot under root
	*net = "bridge";
	if (i < argc && streq(argv[i], "--root") && i + 1 < argc) {
		*root = argv[i + 1];
		i += 2;
	} else if (i < argc && strncmp(argv[i], "--root=", 7) == 0) {
		*root = argv[i] + 7;
		i++;
	}
	if (i >= argc || !streq(argv[i], "run"))
		return 0;
	for (i++; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (bool_flag(a))
			continue;
		char name[64];
		const char *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		if (n >= sizeof name)
			return 0;
		memcpy(name, a, n);
		name[n] = 0;
		int isnet;
		if (!value_flag(name, &isnet))
			return 0; // -i, -t, -d, --help, ... or one not known here
		const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
		if (!v)
			return 0;
		if (isnet)
			*net = v;
	}
	return i < argc; // an image follows
}

// sealed_exe opens this binary through a detached read-only overlay of its
// directory over an empty detached tmpfs (runner.sealedOverlay) and returns
// that descriptor, above 99 (runner.exeFdMin), or -1.
static int sealed_exe(void)
{
	char exe[PATH_MAX], lower[2 * PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return -1;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash || strstr(exe, " (deleted)"))
		return -1;
	*slash = 0;
	const char *dir = exe[0] ? exe : "/", *name = slash + 1;
	size_t j = 0;
	for (const char *p = dir; *p && j < sizeof lower - 64; p++) {
		if (*p == '\\' || *p == ':')
			lower[j++] = '\\';
		lower[j++] = *p;
	}
	int fd = -1, empty = -1, ctx = syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */);
	if (ctx < 0)
		return -1;
	if (syscall(SYS_fsconfig, ctx, 1 /* FSCONFIG_SET_STRING */, "size", "4k", 0) == 0 &&
	    syscall(SYS_fsconfig, ctx, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0) == 0)
		empty = syscall(SYS_fsmount, ctx, 1 /* FSMOUNT_CLOEXEC */,
				0x1 | 0x2 | 0x4 | 0x8 /* MOUNT_ATTR_RDONLY|NOSUID|NODEV|NOEXEC */);
	close(ctx);
	if (empty < 0)
		return -1;
	snprintf(lower + j, sizeof lower - j, ":/proc/self/fd/%d", empty);
	ctx = syscall(SYS_fsopen, "overlay", 1);
	if (ctx >= 0) {
		int mnt = -1;
		if (syscall(SYS_fsconfig, ctx, 1, "lowerdir", lower, 0) == 0) {
			syscall(SYS_fsconfig, ctx, 1, "xino", "off", 0);
			if (syscall(SYS_fsconfig, ctx, 6, NULL, NULL, 0) == 0)
				mnt = syscall(SYS_fsmount, ctx, 1, 0x1 | 0x2 | 0x4 /* RDONLY|NOSUID|NODEV */);
		}
		close(ctx);
		if (mnt >= 0) {
			int f = openat(mnt, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			close(mnt);
			if (f >= 0) {
				fd = fcntl(f, F_DUPFD_CLOEXEC, 100);
				close(f);
			}
		}
	}
	close(empty);
	return fd;
}

// high moves fd above the descriptors the child moves into place.
static int high(int fd)
{
	int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	close(fd);
	return h;
}

__attribute__((constructor)) static void kiln_early_standby(int argc, char **argv, char **envp)
{
	(void)envp;
	const char *root, *net;
	if (getuid() != 0 || geteuid() != 0 || getenv(ROOTLESS_ENV) || !parse(argc, argv, &root, &net))
		return;
	char abs[PATH_MAX];
	if (root[0] != '/') { // as filepath.Abs, without cleaning: Go compares
		if (!getcwd(abs, sizeof abs) || strlen(abs) + strlen(root) + 2 > sizeof abs)
			return;
		strcat(abs, "/");
		strcat(abs, root);
		root = abs;
	}
	if (strlen(root) >= sizeof kiln_standby_root || strlen(net) >= sizeof kiln_standby_net)
		return;
	int own = !streq(net, "host") && !streq(net, "none") && strncmp(net, "container:", 10) != 0;
	int exe = sealed_exe();
	if (exe < 0)
		return;
	int status[2], ctl[2], sock[2];
	if (pipe2(status, O_CLOEXEC) != 0) {
		close(exe);
		return;
	}
	if (pipe2(ctl, O_CLOEXEC) != 0) {
		close(exe), close(status[0]), close(status[1]);
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) != 0) {
		close(exe), close(status[0]), close(status[1]), close(ctl[0]), close(ctl[1]);
		return;
	}
	int theirs[3] = {high(ctl[0]), high(status[1]), high(sock[1])}; // stdin, 3, 4
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0)
		null = high(null);
	char path[32];
	snprintf(path, sizeof path, "/proc/self/fd/%d", exe);
	char *args[] = {MONITOR_ARG0, (char *)root, "-", "-a", NULL};
	char *env[] = {"GOMAXPROCS=2", own ? PRESTART_ENV : NULL, NULL}; // monitorProcs, prestartEnv
	// vfork: no copy of this process's pages for a child that only execs
	// (nor their copy-on-write faults here after).
	pid_t pid = (theirs[0] < 0 || theirs[1] < 0 || theirs[2] < 0 || null < 0) ? -1 : vfork();
	if (pid == 0) {
		if (setsid() < 0 || dup2(theirs[0], 0) != 0 || dup2(null, 1) != 1 || dup2(null, 2) != 2 ||
		    dup2(theirs[1], 3) != 3 || dup2(theirs[2], 4) != 4 ||
		    syscall(SYS_close_range, 5, ~0U, 4 /* CLOSE_RANGE_CLOEXEC: the exe stays until the exec */) != 0)
			_exit(125);
		execve(path, args, env);
		_exit(125);
	}
	close(exe);
	for (int i = 0; i < 3; i++)
		if (theirs[i] >= 0)
			close(theirs[i]);
	if (null >= 0)
		close(null);
	if (pid < 0) {
		close(status[0]), close(ctl[1]), close(sock[0]);
		return;
	}
	strcpy(kiln_standby_root, root);
	strcpy(kiln_standby_net, net);
	kiln_standby_fds[0] = status[0];
	kiln_standby_fds[1] = sock[0];
	kiln_standby_fds[2] = ctl[1];
	kiln_standby_pid = pid;
}
