// The C sandbox init (cinit_linux.c): what its files share.
#ifndef KILN_CINIT_LINUX_H
#define KILN_CINIT_LINUX_H

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define INIT_ARG0 "kiln-runner-init" // runner.initArg0
#define CONFIG_FD 3                  // runner.configFd
#define REPORT_FD 4                  // runner.reportFd
#define PLAN_MAGIC 0x6b636931u       // runner.cPlanMagic ("1ick")

// Operations of the plan: runner.cop* in cplan_linux.go.
enum {
	OP_CGROUPNS = 1,
	OP_ROOTPROP,
	OP_MOUNT_ROOTFS,
	OP_OPEN_ROOT,
	OP_STUBS,
	OP_PLANNED,
	OP_DEVICE,
	OP_RO_ROOTFS,
	OP_PIVOT,
	OP_MOUNT_PATH,
	OP_MKDIR,
	OP_SYMLINK,
	OP_SYSCTL,
	OP_MASK,
	OP_RO_PATH,
	OP_HOSTNAME,
	OP_LO,
	OP_EXEC,
};

enum { MK_GENERIC = 0, MK_BIND = 1, MK_OVERLAY = 2 }; // mount kinds
enum { AFTER_NONE = 0, AFTER_DEV = 1 };

#pragma GCC visibility push(hidden)

// Errors (cinit_linux.c): the message and kind the init reports, and the
// errno the error wraps (0 if none). fail sets them and returns -1; wrapf
// prefixes the message with context and ": "; die reports and exits.
extern char g_err[8192];
extern const char *g_kind;
extern int g_errno;
const char *estr(int e);
__attribute__((format(printf, 2, 3))) int fail(int e, const char *fmt, ...);
__attribute__((format(printf, 1, 2))) int wrapf(const char *fmt, ...);
__attribute__((noreturn)) void die(void);

// A growing byte buffer, for JSON.
struct buf {
	char *p;
	size_t n, cap;
};

void bput(struct buf *b, const void *d, size_t n);
void bputs(struct buf *b, const char *s);
__attribute__((format(printf, 2, 3))) void bprintf(struct buf *b, const char *fmt, ...);
void bjson(struct buf *b, const char *s);
void write_all(int fd, const char *p, size_t n);

// The plan reader: each call takes one field, or dies on a malformed plan.
struct rd {
	const unsigned char *p, *end;
};

__attribute__((noreturn)) void bad_plan(void);
uint32_t r32(struct rd *r);
uint64_t r64(struct rd *r);
const char *rbytes(struct rd *r, uint32_t *len);
const char *rstr(struct rd *r);
const char **rstrs(struct rd *r, uint32_t *count);

// Container paths (clean and absolute).
char *xstrdup(const char *s);
char *path_join(const char *dir, const char *name);
char *path_dir(const char *p);
const char *path_base(const char *p);
const char *rel(const char *p);

// The root and its mounts (cinit_root_linux.c).
extern int g_rootfd;        // the root everything is resolved in, until the pivot
extern const char *g_upper; // the overlay's upper directory, for the stubs' report

// A mount as mountOn mounts it (runner.planWriter.mount).
struct mspec {
	uint32_t kind;
	const char *type, *source, *data;
	uint64_t flags, prop;
	// overlays
	const char **lowers, **opts;
	uint32_t nlowers, nopts, attrs, has_volatile;
	const char *classic, *classic_novol, *classic_err;
};

char *in_resolve(int rootfd, const char *p);
int stub_ensure(const char *p, int dir);
void report_stubs(void);
void read_mspec(struct rd *r, struct mspec *m);
struct mpoint;
int mount_on(struct mspec *m, const char *target, struct mpoint *mp);
int mount_planned(struct rd *r);
int make_device(struct rd *r);

// The command (cinit_exec_linux.c).
int exec_process(struct rd *r);

#pragma GCC visibility pop

#endif
