// The sandbox init a container monitor's constructor starts before the Go
// runtime (prestart_linux.c).
#ifndef KILN_PRESTART_LINUX_H
#define KILN_PRESTART_LINUX_H

// kiln_prestart_pid is the init's pid, -1 when the constructor started
// none; kiln_prestart_fds are the monitor's ends of its pipes: config
// (write), report, stdout and stderr (read), all close-on-exec.
extern int kiln_prestart_pid;
extern int kiln_prestart_fds[4];

#endif
