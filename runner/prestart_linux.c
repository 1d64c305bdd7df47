//go:build linux && cgo

// A container monitor's sandbox init, started before the monitor's own Go
// runtime: each kiln process pays tens of milliseconds from exec to main on
// a slow machine (page faults, the runtime, every package's init), and the
// init's start then overlaps the monitor's instead of following it.
//
// Only a process executed as "kiln-monitor" with _KILN_PRESTART_INIT=1 in
// its environment (set by kiln for a root monitor whose container gets a
// network namespace of its own, no terminal and no stdin) does anything
// here. The init is what runner.Prestart starts (initCommand): kiln itself
// re-executed from /proc/self/exe (the monitor runs from the sealed view of
// the binary; Go checks that before it uses the init) as
// "kiln-runner-init", born in new mount, PID, UTS, IPC and network
// namespaces (the network one, lo up, becomes the container's), killed with
// the monitor's main thread, with /dev/null as stdin, the config and report
// pipes as descriptors 3 and 4, stdout and stderr pipes and nothing else.
// Until the monitor sends its config it only waits for it: every
// confinement comes with the config, as for any sandbox. If the monitor
// dies first, the config pipe ends and the init exits.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "prestart_linux.h"

#define PRESTART_ENV "_KILN_PRESTART_INIT" // runner.PrestartEnv
#define MONITOR_ARG0 "kiln-monitor"        // rootless.HolderArg0
#define INIT_ARG0 "kiln-runner-init"       // initArg0

int kiln_prestart_pid = -1;
int kiln_prestart_fds[4] = {-1, -1, -1, -1};

// lo_up brings lo up in the child's new network namespace.
static int lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP;
		rc = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return rc;
}

// child is the init between the clone and the exec; it only exits on
// failure (the monitor then sees a dead init when it sends the config).
static void child(int fds[5])
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || lo_up() != 0)
		_exit(125);
	// fds (stdin, stdout, stderr, config, report) are all above 9: no dup2
	// below overwrites one still to be moved.
	for (int i = 0; i < 5; i++)
		if (dup2(fds[i], i) != i)
			_exit(125);
	if (syscall(SYS_close_range, 5, ~0U, 0) != 0)
		_exit(125);
	char *argv[] = {INIT_ARG0, NULL};
	char *envp[] = {"GOMAXPROCS=1", NULL};
	execve("/proc/self/exe", argv, envp);
	_exit(125);
}

__attribute__((constructor)) static void kiln_prestart_init(int argc, char **argv, char **envp)
{
	(void)envp;
	const char *v = getenv(PRESTART_ENV);
	if (v == NULL)
		return;
	int want = strcmp(v, "1") == 0 && argc > 0 && argv != NULL && argv[0] != NULL && strcmp(argv[0], MONITOR_ARG0) == 0;
	unsetenv(PRESTART_ENV); // nothing the monitor starts sees it
	if (!want)
		return;
	// pipes[i][0] reads, pipes[i][1] writes: config, report, stdout, stderr.
	int pipes[4][2], n = 0, null = -1;
	for (; n < 4; n++) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) != 0)
			goto fail;
		// Above 9, as the child's dup2s need.
		pipes[n][0] = fcntl(p[0], F_DUPFD_CLOEXEC, 10);
		pipes[n][1] = fcntl(p[1], F_DUPFD_CLOEXEC, 10);
		close(p[0]);
		close(p[1]);
		if (pipes[n][0] < 0 || pipes[n][1] < 0) {
			if (pipes[n][0] >= 0)
				close(pipes[n][0]);
			if (pipes[n][1] >= 0)
				close(pipes[n][1]);
			goto fail;
		}
	}
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull >= 0) {
		null = fcntl(devnull, F_DUPFD_CLOEXEC, 10);
		close(devnull);
	}
	if (null < 0)
		goto fail;
	long pid = syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		int fds[5] = {null, pipes[2][1], pipes[3][1], pipes[0][0], pipes[1][1]};
		child(fds);
	}
	close(null);
	if (pid < 0)
		goto fail;
	// The child's ends go; the monitor keeps config's write end and the
	// others' read ends.
	close(pipes[0][0]);
	close(pipes[1][1]);
	close(pipes[2][1]);
	close(pipes[3][1]);
	kiln_prestart_fds[0] = pipes[0][1];
	kiln_prestart_fds[1] = pipes[1][0];
	kiln_prestart_fds[2] = pipes[2][0];
	kiln_prestart_fds[3] = pipes[3][0];
	kiln_prestart_pid = (int)pid;
	return;
fail:
	// No init: the monitor starts one as usual.
	for (int i = 0; i < n; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
}
