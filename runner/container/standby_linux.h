// The standby monitor `kiln run`'s constructor starts before the Go runtime
// (standby_linux.c).
#ifndef KILN_STANDBY_LINUX_H
#define KILN_STANDBY_LINUX_H

#include <limits.h>

// kiln_standby_pid is the monitor's pid, -1 when the constructor started
// none; kiln_standby_fds are the client's ends of its status pipe (read),
// attach socket and stdin pipe (write), all close-on-exec; root and net
// are the store root and the network mode it was started for.
extern int kiln_standby_pid;
extern int kiln_standby_fds[3];
extern char kiln_standby_root[PATH_MAX];
extern char kiln_standby_net[256];

// kiln_standby_flag is how the constructor reads a flag of run: 1 it
// takes a value, 2 a boolean skipped, 0 one that leaves the run to Go.
int kiln_standby_flag(const char *name);

#endif
