//go:build linux && cgo

// The sandbox init without a Go runtime. A process executed as
// "kiln-runner-init" (runner.initCommand, or prestart_linux.c's clone) runs
// this constructor before Go starts: it reads the first byte of its config
// (descriptor 3). 'G' leaves the rest to the Go init (runner.Init: a
// terminal, a tiny init, OCI hooks, volumes to fill); 'C' is followed by
// a plan (cplan_linux.go), which this file carries out and then execs the
// command: the Go runtime never starts in the sandbox.
//
// The plan is policy already applied by the parent: every mount with its
// flags and data parsed, device nodes, masked paths, the capability set as
// a bitmask, the compiled seccomp program, the environment. What depends on
// the image's files is done here, as the Go init does it and with its
// error messages: paths resolved inside the root (openat2 RESOLVE_IN_ROOT),
// mount stubs created and reported (JSON on descriptor 4, as the Go init
// writes it), the user looked up in the image's /etc/passwd and
// /etc/group, the working directory made, the executable found in PATH.
// Every failure is reported on descriptor 4 as {"Error":...,"Kind":...}
// and the init exits 1.
#define _GNU_SOURCE
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

// ---- errors: the message and kind reported to the parent ----

static char g_err[8192];
static const char *g_kind = "";
static int g_errno; // the errno an error wraps, 0 if none

// estr is the text Go gives errno e ("no such file or directory").
static const char *estr(int e)
{
	static char bufs[4][128];
	static int next;
	char *b = bufs[next++ & 3];
	const char *s = strerror(e);
	if (strncmp(s, "Unknown error", 13) == 0)
		snprintf(b, 128, "errno %d", e);
	else
		snprintf(b, 128, "%s", s);
	b[0] = (char)tolower((unsigned char)b[0]);
	return b;
}

__attribute__((format(printf, 2, 3))) static int fail(int e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(g_err, sizeof g_err, fmt, ap);
	va_end(ap);
	g_errno = e;
	g_kind = "";
	return -1;
}

// wrapf prefixes the current error with a formatted context and ": ".
__attribute__((format(printf, 1, 2))) static int wrapf(const char *fmt, ...)
{
	char pre[4096], old[sizeof g_err];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof pre, fmt, ap);
	va_end(ap);
	snprintf(old, sizeof old, "%s", g_err);
	snprintf(g_err, sizeof g_err, "%s: %s", pre, old);
	return -1;
}

// ---- a growing byte buffer, for JSON ----

struct buf {
	char *p;
	size_t n, cap;
};

static void bput(struct buf *b, const void *d, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap * 2 : 1024;
		while (c < b->n + n + 1)
			c *= 2;
		char *p = realloc(b->p, c);
		if (p == NULL)
			_exit(1);
		b->p = p;
		b->cap = c;
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void bputs(struct buf *b, const char *s) { bput(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void bprintf(struct buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	if (n > 0)
		bput(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

// bjson puts s as a JSON string (bytes >= 0x80 as they are: Go's decoder
// takes invalid UTF-8 as U+FFFD, as its encoder writes it).
static void bjson(struct buf *b, const char *s)
{
	bputs(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			bput(b, e, 2);
		} else if (c < 0x20) {
			bprintf(b, "\\u%04x", c);
		} else {
			bput(b, &c, 1);
		}
	}
	bputs(b, "\"");
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

// die reports the current error to the parent (runner.initReport) and exits.
static __attribute__((noreturn)) void die(void)
{
	struct buf b = {0};
	bputs(&b, "{\"Error\":");
	bjson(&b, g_err);
	if (g_kind[0]) {
		bputs(&b, ",\"Kind\":");
		bjson(&b, g_kind);
	}
	bputs(&b, "}\n");
	write_all(REPORT_FD, b.p, b.n);
	_exit(1);
}

// ---- the plan reader ----

struct rd {
	const unsigned char *p, *end;
};

static __attribute__((noreturn)) void bad_plan(void)
{
	fail(0, "read sandbox config: malformed plan");
	die();
}

static uint32_t r32(struct rd *r)
{
	if (r->end - r->p < 4)
		bad_plan();
	uint32_t v;
	memcpy(&v, r->p, 4);
	r->p += 4;
	return v;
}

static uint64_t r64(struct rd *r)
{
	if (r->end - r->p < 8)
		bad_plan();
	uint64_t v;
	memcpy(&v, r->p, 8);
	r->p += 8;
	return v;
}

// rbytes reads a length and that many bytes, followed by a NUL.
static const char *rbytes(struct rd *r, uint32_t *len)
{
	uint32_t n = r32(r);
	if ((size_t)(r->end - r->p) < (size_t)n + 1 || r->p[n] != 0)
		bad_plan();
	const char *s = (const char *)r->p;
	r->p += n + 1;
	if (len)
		*len = n;
	return s;
}

static const char *rstr(struct rd *r)
{
	uint32_t n;
	const char *s = rbytes(r, &n);
	if (strlen(s) != n)
		bad_plan();
	return s;
}

static const char **rstrs(struct rd *r, uint32_t *count)
{
	uint32_t n = r32(r);
	if (n > (uint32_t)(r->end - r->p))
		bad_plan();
	const char **v = calloc((size_t)n + 1, sizeof *v);
	if (v == NULL)
		_exit(1);
	for (uint32_t i = 0; i < n; i++)
		v[i] = rstr(r);
	if (count)
		*count = n;
	return v;
}

// ---- container paths (clean and absolute) ----

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		_exit(1);
	return d;
}

static char *path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);
	if (p == NULL)
		_exit(1);
	memcpy(p, dir, a);
	size_t n = a;
	if (a == 0 || dir[a - 1] != '/')
		p[n++] = '/';
	memcpy(p + n, name, b + 1);
	return p;
}

static char *path_dir(const char *p)
{
	const char *s = strrchr(p, '/');
	if (s == NULL || s == p)
		return xstrdup("/");
	return strndup(p, (size_t)(s - p));
}

static const char *path_base(const char *p)
{
	if (strcmp(p, "/") == 0)
		return "/";
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

// rel is inroot.Rel of a clean absolute path.
static const char *rel(const char *p)
{
	while (*p == '/')
		p++;
	return *p ? p : ".";
}

// ---- inside the root (layer/inroot) ----

// in_open is inroot.Open: fd, or -errno.
static int in_open(int rootfd, const char *p, uint64_t flags)
{
	struct open_how how = {
		.flags = flags | O_CLOEXEC,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	for (;;) {
		long fd = syscall(SYS_openat2, rootfd, p[0] ? p : ".", &how, sizeof how);
		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

// in_resolve is inroot.Resolve: a malloc'd clean container path, or NULL.
static char *in_resolve(int rootfd, const char *p)
{
	char *resolved = xstrdup("/");
	char *remaining = xstrdup(p);
	int links = 0;
	char *cur = remaining;
	for (;;) {
		while (*cur == '/')
			cur++;
		if (*cur == 0)
			break;
		char *slash = strchr(cur, '/');
		char *comp = cur;
		if (slash) {
			*slash = 0;
			cur = slash + 1;
		} else {
			cur += strlen(cur);
		}
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) {
			char *d = path_dir(resolved);
			free(resolved);
			resolved = d;
			continue;
		}
		char *next = path_join(resolved, comp);
		int dfd = in_open(rootfd, rel(resolved), O_PATH | O_DIRECTORY);
		struct stat st;
		int e = 0;
		if (dfd < 0)
			e = -dfd;
		else if (fstatat(dfd, comp, &st, AT_SYMLINK_NOFOLLOW) != 0)
			e = errno;
		if (e != 0) {
			if (dfd >= 0)
				close(dfd);
			if (e == ENOENT || e == ENOTDIR) {
				free(resolved);
				resolved = next;
				continue;
			}
			fail(e, "resolve %s in root: %s", p, estr(e));
			goto err;
		}
		if (!S_ISLNK(st.st_mode)) {
			close(dfd);
			free(resolved);
			resolved = next;
			continue;
		}
		char target[PATH_MAX + 1];
		ssize_t n = readlinkat(dfd, comp, target, PATH_MAX);
		e = errno;
		close(dfd);
		free(next);
		if (n < 0) {
			fail(e, "resolve %s in root: %s", p, estr(e));
			goto err;
		}
		target[n] = 0;
		if (++links > 255) {
			fail(ELOOP, "resolve %s in root: %s", p, estr(ELOOP));
			goto err;
		}
		if (target[0] == '/') {
			free(resolved);
			resolved = xstrdup("/");
		}
		char *rest = malloc((size_t)n + strlen(cur) + 2);
		if (rest == NULL)
			_exit(1);
		sprintf(rest, "%s/%s", target, cur);
		free(remaining);
		remaining = cur = rest;
	}
	free(remaining);
	return resolved;
err:
	free(remaining);
	free(resolved);
	return NULL;
}

// in_mkdir_all is inroot.MkdirAll (mode 0755, no callback): an O_PATH
// descriptor of the directory p, or -1.
static int in_mkdir_all(int rootfd, const char *p)
{
	int fd = in_open(rootfd, rel(p), O_PATH | O_DIRECTORY);
	if (fd >= 0)
		return fd;
	if (strcmp(p, "/") == 0)
		return fail(ENOTDIR, "open root: not a directory");
	char *d = path_dir(p);
	int pfd = in_mkdir_all(rootfd, d);
	free(d);
	if (pfd < 0)
		return -1;
	int existed = 0;
	if (mkdirat(pfd, path_base(p), 0755) != 0) {
		int e = errno;
		close(pfd);
		if (e != EEXIST)
			return fail(e, "mkdir %s: %s", p, estr(e));
		existed = 1;
	} else {
		close(pfd);
	}
	fd = in_open(rootfd, rel(p), O_PATH | O_DIRECTORY);
	if (fd < 0) {
		if (existed || fd == -ENOTDIR)
			return fail(ENOTDIR, "mkdir %s: not a directory", p);
		return fail(-fd, "open %s: %s", p, estr(-fd));
	}
	return fd;
}

// ---- mount stubs (stubs_linux.go) ----

struct stub {
	char *path;
	int created, dir, in_upper;
	struct stat pre;
	struct timespec post;
};

static struct stub *stubs;
static size_t nstubs, capstubs;
static int g_rootfd = -1;
static const char *g_upper;

static struct stub *stub_add(const char *p)
{
	if (nstubs == capstubs) {
		capstubs = capstubs ? capstubs * 2 : 16;
		stubs = realloc(stubs, capstubs * sizeof *stubs);
		if (stubs == NULL)
			_exit(1);
	}
	struct stub *s = &stubs[nstubs++];
	memset(s, 0, sizeof *s);
	s->path = xstrdup(p);
	return s;
}

static int stub_known(const char *p)
{
	for (size_t i = 0; i < nstubs; i++)
		if (strcmp(stubs[i].path, p) == 0)
			return 1;
	return 0;
}

// root_lstat is stubMaker.lstat: 0 or -errno.
static int root_lstat(const char *p, struct stat *st)
{
	if (strcmp(p, "/") == 0)
		return fstat(g_rootfd, st) == 0 ? 0 : -errno;
	char *d = path_dir(p);
	int dfd = in_open(g_rootfd, rel(d), O_PATH | O_DIRECTORY);
	free(d);
	if (dfd < 0)
		return dfd;
	int r = fstatat(dfd, path_base(p), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
	close(dfd);
	return r;
}

static int record_ancestor(const char *p)
{
	if (stub_known(p))
		return 0;
	struct stat st, ust;
	int r = root_lstat(p, &st);
	if (r < 0)
		return fail(-r, "stat %s: %s", p, estr(-r));
	char *up = malloc(strlen(g_upper) + strlen(p) + 1);
	if (up == NULL)
		_exit(1);
	sprintf(up, "%s%s", g_upper, p);
	int in_upper = lstat(up, &ust) == 0;
	free(up);
	struct stub *s = stub_add(p);
	s->dir = 1;
	s->in_upper = in_upper;
	s->pre = st;
	return 0;
}

static int ensure_in(int dfd, const char *name, const char *p, const char *target, int is_dir)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (!S_ISDIR(st.st_mode))
			return fail(ENOTDIR, "create mount point %s: %s is not a directory", target, p);
		return record_ancestor(p);
	}
	if (errno != ENOENT)
		return fail(errno, "stat %s: %s", p, estr(errno));
	int r;
	if (is_dir) {
		r = mkdirat(dfd, name, 0755);
	} else {
		r = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (r >= 0)
			close(r);
	}
	if (r < 0)
		return fail(errno, "create mount point %s: %s", p, estr(errno));
	struct stub *s = stub_add(p);
	s->created = 1;
	s->dir = is_dir;
	return 0;
}

// stub_ensure is stubMaker.ensure.
static int stub_ensure(const char *p, int dir)
{
	struct stat st;
	int r = root_lstat(p, &st);
	if (r == 0)
		return 0;
	if (r != -ENOENT)
		return fail(-r, "stat mount point %s: %s", p, estr(-r));
	if (record_ancestor("/") < 0)
		return -1;
	char *comps = xstrdup(p), *save = NULL;
	char *cur = xstrdup("/");
	int rc = 0;
	for (char *c = strtok_r(comps, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
		int last = save == NULL || *save == 0;
		int dfd = in_open(g_rootfd, rel(cur), O_PATH | O_DIRECTORY);
		if (dfd < 0) {
			rc = fail(-dfd, "open %s: %s", cur, estr(-dfd));
			break;
		}
		char *next = path_join(cur, c);
		free(cur);
		cur = next;
		rc = ensure_in(dfd, c, next, p, dir || !last);
		close(dfd);
		if (rc < 0)
			break;
	}
	free(cur);
	free(comps);
	return rc;
}

static void bts(struct buf *b, const char *name, struct timespec t)
{
	bprintf(b, ",\"%s\":{\"Sec\":%lld,\"Nsec\":%ld}", name, (long long)t.tv_sec, t.tv_nsec);
}

// report_stubs is stubMaker.finish and the report of its entries.
static void report_stubs(void)
{
	for (size_t i = 0; i < nstubs; i++) {
		struct stat st;
		if (!stubs[i].created && root_lstat(stubs[i].path, &st) == 0)
			stubs[i].post = st.st_mtim;
	}
	struct buf b = {0};
	if (nstubs == 0) {
		bputs(&b, "{}\n");
	} else {
		bputs(&b, "{\"Stubs\":[");
		for (size_t i = 0; i < nstubs; i++) {
			struct stub *s = &stubs[i];
			bputs(&b, i ? ",{\"Path\":" : "{\"Path\":");
			bjson(&b, s->path);
			bprintf(&b, ",\"Created\":%s,\"Dir\":%s,\"InUpper\":%s,\"Mode\":%u,\"UID\":%u,\"GID\":%u",
				s->created ? "true" : "false", s->dir ? "true" : "false", s->in_upper ? "true" : "false",
				s->created ? 0u : (unsigned)s->pre.st_mode, s->created ? 0u : (unsigned)s->pre.st_uid,
				s->created ? 0u : (unsigned)s->pre.st_gid);
			struct timespec zero = {0, 0};
			bts(&b, "Atime", s->created ? zero : s->pre.st_atim);
			bts(&b, "Mtime", s->created ? zero : s->pre.st_mtim);
			bts(&b, "PostMtime", s->post);
			bputs(&b, "}");
		}
		bputs(&b, "]}\n");
	}
	write_all(REPORT_FD, b.p, b.n);
	free(b.p);
}

// ---- mounts (mount_linux.go) ----

struct mspec {
	uint32_t kind;
	const char *type, *source, *data;
	uint64_t flags, prop;
	// overlays
	const char **lowers, **opts;
	uint32_t nlowers, nopts, attrs, has_volatile;
	const char *classic, *classic_novol, *classic_err;
};

static void read_mspec(struct rd *r, struct mspec *m)
{
	memset(m, 0, sizeof *m);
	m->kind = r32(r);
	m->type = rstr(r);
	m->source = rstr(r);
	m->flags = r64(r);
	m->prop = r64(r);
	m->data = rstr(r);
	if (m->kind == MK_OVERLAY) {
		m->lowers = rstrs(r, &m->nlowers);
		m->opts = rstrs(r, &m->nopts);
		m->attrs = r32(r);
		m->has_volatile = r32(r);
		m->classic = rstr(r);
		m->classic_novol = rstr(r);
		m->classic_err = rstr(r);
	}
}

// mpoint is a mount point opened inside the root (runner.mountPoint).
struct mpoint {
	int parent, fd;
	const char *name;
	char path[64];
};

// top opens what is mounted on mp now, its name in path: fd or -1.
static int top(struct mpoint *mp, char *path, size_t n)
{
	int fd = openat(mp->parent, mp->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, "open the new mount: %s", estr(errno));
	snprintf(path, n, "/proc/self/fd/%d", fd);
	return fd;
}

// on_top applies propagation (and, for a bind, the remount of its flags
// when remount is not 0) to the mount just made on target.
static int on_top(const char *target, struct mpoint *mp, uint64_t remount, uint64_t prop)
{
	char path[64];
	int fd = -1;
	const char *t = target;
	if (mp != NULL) {
		if ((fd = top(mp, path, sizeof path)) < 0)
			return -1;
		t = path;
	}
	int rc = 0;
	if (remount != 0 && mount("", t, "", MS_BIND | MS_REMOUNT | remount, "") != 0) {
		int e = errno;
		umount2(t, MNT_DETACH);
		rc = fail(e, "remount: %s", estr(e));
	} else if (prop != 0 && mount("", t, "", prop, "") != 0) {
		rc = fail(errno, "%s", estr(errno));
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

// fs_log is runner.fsLog: the kernel's messages of an fs context.
static void fs_log(int fd, char *out, size_t n)
{
	out[0] = 0;
	size_t used = 0;
	for (int i = 0; i < 8; i++) {
		char msg[512];
		ssize_t r = read(fd, msg, sizeof msg - 1);
		if (r <= 0)
			break;
		msg[r] = 0;
		while (r > 0 && isspace((unsigned char)msg[r - 1]))
			msg[--r] = 0;
		char *m = msg;
		while (isspace((unsigned char)*m))
			m++;
		used += (size_t)snprintf(out + used, used < n ? n - used : 0, "%s%s", used ? "; " : " (", m);
		if (used >= n)
			break;
	}
	if (used > 0 && used + 2 < n)
		strcat(out, ")");
}

#define NEW_API_UNSUPPORTED -2

// overlay_new is runner.mountOverlayNew; NEW_API_UNSUPPORTED when the
// kernel lacks fsopen or lowerdir+.
static int overlay_new(struct mspec *m, const char *target, struct mpoint *mp, int skip_volatile)
{
	char log[1024];
	int fd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOSYS)
			return NEW_API_UNSUPPORTED;
		return fail(errno, "fsopen overlay: %s", estr(errno));
	}
	int rc = 0;
	for (uint32_t i = 0; i < m->nlowers; i++) {
		if (fsconfig(fd, FSCONFIG_SET_STRING, "lowerdir+", m->lowers[i], 0) != 0) {
			int e = errno;
			if (i == 0 && e == EINVAL) {
				rc = NEW_API_UNSUPPORTED;
				goto out;
			}
			fs_log(fd, log, sizeof log);
			rc = fail(e, "set lowerdir+ \"%s\": %s%s", m->lowers[i], estr(e), log);
			goto out;
		}
	}
	for (uint32_t i = 0; i < m->nopts; i++) {
		const char *o = m->opts[i];
		if (skip_volatile && strcmp(o, "volatile") == 0)
			continue;
		const char *eq = strchr(o, '=');
		int r;
		if (eq) {
			char *k = strndup(o, (size_t)(eq - o));
			r = fsconfig(fd, FSCONFIG_SET_STRING, k, eq + 1, 0);
			free(k);
		} else {
			r = fsconfig(fd, FSCONFIG_SET_FLAG, o, NULL, 0);
		}
		if (r != 0) {
			int e = errno;
			fs_log(fd, log, sizeof log);
			rc = fail(e, "set overlay option \"%s\": %s%s", o, estr(e), log);
			goto out;
		}
	}
	if (fsconfig(fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0) {
		int e = errno;
		fs_log(fd, log, sizeof log);
		rc = fail(e, "create overlay: %s%s", estr(e), log);
		goto out;
	}
	int mfd = fsmount(fd, FSMOUNT_CLOEXEC, m->attrs);
	if (mfd < 0) {
		rc = fail(errno, "fsmount overlay: %s", estr(errno));
		goto out;
	}
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_SYMLINKS) != 0)
		rc = fail(errno, "move mount: %s", estr(errno));
	close(mfd);
	if (rc == 0 && m->prop != 0)
		rc = on_top(target, mp, 0, m->prop);
out:
	close(fd);
	return rc;
}

static int overlay_classic(struct mspec *m, const char *target, struct mpoint *mp, int skip_volatile)
{
	if (m->classic_err[0])
		return fail(0, "%s", m->classic_err);
	const char *data = skip_volatile ? m->classic_novol : m->classic;
	if (mount("overlay", target, "overlay", m->flags, data) != 0)
		return fail(errno, "%s", estr(errno));
	if (m->prop != 0)
		return on_top(target, mp, 0, m->prop);
	return 0;
}

static int overlay_mount(struct mspec *m, const char *target, struct mpoint *mp, int skip_volatile)
{
	int rc = overlay_new(m, target, mp, skip_volatile);
	if (rc == NEW_API_UNSUPPORTED)
		rc = overlay_classic(m, target, mp, skip_volatile);
	return rc;
}

// mount_on is runner.mountOn, for the mount point mp (or target itself
// when mp is NULL).
static int mount_on(struct mspec *m, const char *target, struct mpoint *mp)
{
	int rc;
	switch (m->kind) {
	case MK_OVERLAY:
		rc = overlay_mount(m, target, mp, 0);
		if (rc < 0 && g_errno == EINVAL && m->has_volatile)
			rc = overlay_mount(m, target, mp, 1);
		break;
	case MK_BIND: {
		uint64_t flags = m->flags | MS_BIND;
		if (mount(m->source, target, "", flags, "") != 0) {
			rc = fail(errno, "%s", estr(errno));
			break;
		}
		rc = on_top(target, mp, flags & ~(uint64_t)(MS_BIND | MS_REC), m->prop);
		break;
	}
	default:
		rc = 0;
		if (mount(m->source[0] ? m->source : m->type, target, m->type, m->flags, m->data) != 0)
			rc = fail(errno, "%s", estr(errno));
		else if (m->prop != 0)
			rc = on_top(target, mp, 0, m->prop);
	}
	if (rc < 0)
		wrapf("mount %s on %s", m->type, target);
	return rc;
}

static void mp_close(struct mpoint *mp)
{
	if (mp->fd >= 0)
		close(mp->fd);
	if (mp->parent >= 0)
		close(mp->parent);
}

// open_mount_point is runner.openMountPoint.
static int open_mount_point(const char *p, int dir, int create, struct mpoint *mp)
{
	mp->parent = mp->fd = -1;
	mp->name = path_base(p);
	if (strcmp(p, "/") == 0)
		return fail(0, "mount point %s: resolves to the root", p);
	char *d = path_dir(p);
	if (create) {
		mp->parent = in_mkdir_all(g_rootfd, d);
		int rc = mp->parent < 0 ? -1 : 0;
		if (rc == 0) {
			if (dir) {
				if (mkdirat(mp->parent, mp->name, 0755) != 0 && errno != EEXIST)
					rc = fail(errno, "%s", estr(errno));
			} else {
				int fd = openat(mp->parent, mp->name, O_CREAT | O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
				if (fd < 0)
					rc = fail(errno, "%s", estr(errno));
				else
					close(fd);
			}
		}
		if (rc < 0) {
			free(d);
			mp_close(mp);
			return wrapf("create mount point %s", p);
		}
	} else if ((mp->parent = in_open(g_rootfd, rel(d), O_PATH | O_DIRECTORY)) < 0) {
		int e = -mp->parent;
		mp->parent = -1;
		free(d);
		return fail(e, "open mount point %s: %s", p, estr(e));
	}
	free(d);
	mp->fd = openat(mp->parent, mp->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	int rc = 0;
	if (mp->fd < 0) {
		rc = fail(errno, "open mount point %s: %s", p, estr(errno));
	} else {
		struct stat st;
		if (fstat(mp->fd, &st) != 0)
			rc = fail(errno, "open mount point %s: %s", p, estr(errno));
		else if (S_ISLNK(st.st_mode))
			rc = fail(ELOOP, "open mount point %s: is a symlink", p);
	}
	if (rc < 0) {
		mp_close(mp);
		return -1;
	}
	snprintf(mp->path, sizeof mp->path, "/proc/self/fd/%d", mp->fd);
	return 0;
}

// ---- /dev (runner.populateDev) ----

static int populate_dev(struct rd *r, const char *dev)
{
	char p[PATH_MAX];
	uint32_t n = r32(r);
	for (uint32_t i = 0; i < n; i++) { // the host's devices (--privileged)
		const char *relp = rstr(r);
		uint32_t isdir = r32(r), mode = r32(r);
		uint64_t rdev = r64(r);
		uint32_t uid = r32(r), gid = r32(r);
		snprintf(p, sizeof p, "%s%s", dev, relp);
		if (isdir) { // listed before what it holds
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
				return fail(errno, "mkdir %s: %s", p, estr(errno));
			continue;
		}
		if (mknod(p, mode, rdev) != 0 && errno != EEXIST)
			return fail(errno, "create device /dev%s: %s", relp, estr(errno));
		if (lchown(p, uid, gid) != 0) {
			// as the Go init: the node stays root's
		}
	}
	n = r32(r);
	for (uint32_t i = 0; i < n; i++) { // the default devices
		const char *name = rstr(r);
		uint64_t rdev = r64(r);
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", dev, name);
		if (lstat(p, &st) == 0)
			continue;
		if (mknod(p, S_IFCHR | 0666, rdev) == 0)
			continue;
		if (errno != EPERM)
			return fail(errno, "create /dev/%s: %s", name, estr(errno));
		// No mknod in this user namespace: a bind of the host's node.
		int fd = open(p, O_CREAT | O_RDONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail(errno, "create /dev/%s: create mount point: open %s: %s", name, p, estr(errno));
		close(fd);
		char src[PATH_MAX];
		snprintf(src, sizeof src, "/dev/%s", name);
		if (mount(src, p, "", MS_BIND, "") != 0)
			return fail(errno, "create /dev/%s: mount bind on %s: %s", name, p, estr(errno));
	}
	n = r32(r);
	for (uint32_t i = 0; i < n; i++) { // devpts and shm
		const char *dir = rstr(r), *type = rstr(r), *source = rstr(r);
		uint32_t mode = r32(r);
		uint64_t flags = r64(r);
		const char *data = rstr(r), *data_einval = rstr(r);
		snprintf(p, sizeof p, "%s/%s", dev, dir);
		if (mkdir(p, mode) != 0 && errno != EEXIST)
			return fail(errno, "create /dev/%s: %s", dir, estr(errno));
		int rc = mount(source, p, type, flags, data);
		if (rc != 0 && errno == EINVAL && data_einval[0])
			// A user namespace that does not map gid 5 (populateDev).
			rc = mount(source, p, type, flags, data_einval);
		if (rc != 0)
			return fail(errno, "mount %s on %s: %s", type, p, estr(errno));
	}
	n = r32(r);
	for (uint32_t i = 0; i < n; i++) {
		const char *name = rstr(r), *target = rstr(r);
		snprintf(p, sizeof p, "%s/%s", dev, name);
		if (symlink(target, p) != 0)
			return fail(errno, "create /dev/%s: symlink %s %s: %s", name, target, p, estr(errno));
	}
	return 0;
}

// mount_planned is runner.mountPlanned.
static int mount_planned(struct rd *r)
{
	const char *target = rstr(r);
	uint32_t dir = r32(r), nested = r32(r);
	struct mspec m, fb;
	read_mspec(r, &m);
	uint32_t has_fallback = r32(r);
	if (has_fallback)
		read_mspec(r, &fb);
	uint32_t after = r32(r);
	char *p = in_resolve(g_rootfd, target);
	if (p == NULL)
		return -1;
	struct mpoint mp;
	if (open_mount_point(p, (int)dir, (int)nested, &mp) < 0)
		return -1;
	int rc = mount_on(&m, mp.path, &mp);
	if (rc < 0 && has_fallback) {
		char first[sizeof g_err];
		snprintf(first, sizeof first, "%s", g_err);
		if (mount_on(&fb, mp.path, &mp) < 0) {
			char second[sizeof g_err];
			snprintf(second, sizeof second, "%s", g_err);
			snprintf(g_err, sizeof g_err, "%s\n%s", first, second); // errors.Join
		} else {
			rc = 0;
		}
	}
	if (rc == 0 && after == AFTER_DEV) {
		char path[64];
		int fd = top(&mp, path, sizeof path);
		rc = fd < 0 ? -1 : populate_dev(r, path);
		if (fd >= 0)
			close(fd);
	}
	mp_close(&mp);
	free(p);
	return rc;
}

// make_device is runner.makeDevice, the host's node already stat'ed.
static int make_device(struct rd *r)
{
	const char *target = rstr(r), *source = rstr(r);
	uint32_t mode = r32(r);
	uint64_t rdev = r64(r);
	uint32_t uid = r32(r), gid = r32(r);
	char *p = in_resolve(g_rootfd, target);
	if (p == NULL)
		return -1;
	if (strcmp(p, "/") == 0)
		return fail(0, "device %s: resolves to the root", target);
	char *d = path_dir(p);
	int dfd = in_mkdir_all(g_rootfd, d);
	free(d);
	if (dfd < 0)
		return wrapf("device %s", target);
	const char *name = path_base(p);
	int rc = 0, fd = -1;
	char path[64];
	if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT) {
		rc = fail(errno, "device %s: %s", target, estr(errno));
		goto out;
	}
	if (mknodat(dfd, name, mode, rdev) != 0) {
		if (errno != EPERM || !source[0]) {
			rc = fail(errno, "device %s: %s", target, estr(errno));
			goto out;
		}
		// No mknod in a user namespace: a bind mount of the host's node.
		fd = openat(dfd, name, O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_RDONLY, 0600);
		if (fd < 0) {
			rc = fail(errno, "device %s: %s", target, estr(errno));
			goto out;
		}
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		if (mount(source, path, "", MS_BIND, "") != 0)
			rc = fail(errno, "device %s: mount bind on %s: %s", target, path, estr(errno));
		goto out;
	}
	fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat made;
	if (fd < 0 || fstat(fd, &made) != 0) {
		rc = fail(errno, "device %s: %s", target, estr(errno));
		goto out;
	}
	if ((made.st_mode & S_IFMT) != (mode & S_IFMT) || made.st_rdev != rdev) {
		rc = fail(0, "device %s: replaced while being made", target);
		goto out;
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	if (chmod(path, mode & 07777) != 0)
		rc = fail(errno, "device %s: %s", target, estr(errno));
	else if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) != 0)
		rc = fail(errno, "device %s: %s", target, estr(errno));
out:
	if (fd >= 0)
		close(fd);
	close(dfd);
	free(p);
	return rc;
}

// ---- the user (user.go) ----

struct pwent {
	char *name, *home;
	long long uid, gid;
};

struct grent {
	char *name;
	long long gid;
	char **members;
	size_t nmembers;
};

#define USER_FILE_LIMIT (10 << 20)

// go_atoi is strconv.Atoi: 0 or -1.
static int go_atoi(const char *s, long long *out)
{
	int neg = 0;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (*s == 0)
		return -1;
	unsigned long long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v > (1ULL << 63) / 10)
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > (1ULL << 63) - (neg ? 0 : 1))
			return -1;
	}
	*out = neg ? -(long long)v : (long long)v;
	return 0;
}

// parse_id is runner.parseID.
static int parse_id(const char *s, long long *out)
{
	if (strcmp(s, "root") == 0) {
		*out = 0;
		return 1;
	}
	if (*s == 0)
		return 0;
	unsigned long long v = 0;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return 0;
		v = v * 10 + (unsigned)(*c - '0');
		if (v > 4294967295ULL)
			return 0;
	}
	if (v > 2147483647ULL)
		return 0;
	*out = (long long)v;
	return 1;
}

static int go_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

// user_file opens and reads name (runner.openUserFile and scanColonLines'
// limit): the contents, NULL with *missing set when there is none, or NULL
// on error.
static char *user_file(const char *name, int *missing)
{
	*missing = 0;
	int fd = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*missing = 1;
			return NULL;
		}
		fail(errno, "open %s: open %s: %s", name, name, estr(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		fail(0, "open %s: not a regular file", name);
		return NULL;
	}
	size_t cap = 65536, n = 0;
	char *data = malloc(cap + 1);
	if (data == NULL)
		_exit(1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			if ((data = realloc(data, cap + 1)) == NULL)
				_exit(1);
		}
		ssize_t r = read(fd, data + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fail(errno, "read %s: read %s: %s", name, name, estr(errno));
			free(data);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > USER_FILE_LIMIT) {
			fail(0, "read %s: larger than %d bytes", name, USER_FILE_LIMIT);
			free(data);
			close(fd);
			return NULL;
		}
	}
	close(fd);
	data[n] = 0;
	if (memchr(data, 0, n) != NULL) {
		// NULs are line content to Go: keep them from ending lines here.
		for (size_t i = 0; i < n; i++)
			if (data[i] == 0)
				data[i] = '\x01';
	}
	return data;
}

// next_line splits the next line off *s (bufio.ScanLines, then
// strings.TrimSpace); NULL at the end, or with *toolong for a line over
// 1 MiB.
static char *next_line(char **s, int *toolong)
{
	if (**s == 0)
		return NULL;
	char *line = *s, *nl = strchr(line, '\n');
	if (nl) {
		*nl = 0;
		*s = nl + 1;
	} else {
		*s = line + strlen(line);
	}
	if (strlen(line) > (1 << 20))
		*toolong = 1;
	while (go_space((unsigned char)*line))
		line++;
	size_t n = strlen(line);
	while (n > 0 && go_space((unsigned char)line[n - 1]))
		line[--n] = 0;
	return line;
}

// split_colon splits line at ':' into at most max fields; the count.
static int split_colon(char *line, char **f, int max)
{
	int n = 0;
	f[n++] = line;
	for (char *c = line; *c; c++) {
		if (*c == ':') {
			*c = 0;
			if (n == max)
				return n + 1; // more fields than needed
			f[n++] = c + 1;
		}
	}
	return n;
}

static int parse_passwd(char *data, struct pwent **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	if (data == NULL)
		return 0;
	size_t cap = 0;
	int toolong = 0;
	for (char *line, *s = data; (line = next_line(&s, &toolong)) != NULL;) {
		if (toolong)
			return fail(0, "read /etc/passwd: bufio.Scanner: token too long");
		if (line[0] == 0 || line[0] == '#')
			continue;
		char *f[7];
		int n = split_colon(line, f, 7);
		if (n < 4)
			continue;
		long long uid, gid;
		if (go_atoi(f[2], &uid) != 0 || go_atoi(f[3], &gid) != 0)
			continue;
		if (*nout == cap) {
			cap = cap ? cap * 2 : 32;
			if ((*out = realloc(*out, cap * sizeof **out)) == NULL)
				_exit(1);
		}
		struct pwent *e = &(*out)[(*nout)++];
		e->name = f[0];
		e->uid = uid;
		e->gid = gid;
		e->home = (n > 5 && f[5][0]) ? f[5] : "/";
	}
	return 0;
}

static int parse_group(char *data, struct grent **out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	if (data == NULL)
		return 0;
	size_t cap = 0;
	int toolong = 0;
	for (char *line, *s = data; (line = next_line(&s, &toolong)) != NULL;) {
		if (toolong)
			return fail(0, "read /etc/group: bufio.Scanner: token too long");
		if (line[0] == 0 || line[0] == '#')
			continue;
		char *f[5];
		int n = split_colon(line, f, 4);
		if (n < 3)
			continue;
		long long gid;
		if (go_atoi(f[2], &gid) != 0)
			continue;
		if (*nout == cap) {
			cap = cap ? cap * 2 : 32;
			if ((*out = realloc(*out, cap * sizeof **out)) == NULL)
				_exit(1);
		}
		struct grent *e = &(*out)[(*nout)++];
		memset(e, 0, sizeof *e);
		e->name = f[0];
		e->gid = gid;
		if (n > 3 && f[3][0]) {
			// The members field ends at the next ':' (a fifth field).
			char *save = NULL;
			for (char *m = strtok_r(f[3], ",", &save); m; m = strtok_r(NULL, ",", &save)) {
				while (go_space((unsigned char)*m))
					m++;
				size_t l = strlen(m);
				while (l > 0 && go_space((unsigned char)m[l - 1]))
					m[--l] = 0;
				if (!*m)
					continue;
				if ((e->members = realloc(e->members, (e->nmembers + 1) * sizeof *e->members)) == NULL)
					_exit(1);
				e->members[e->nmembers++] = m;
			}
		}
	}
	return 0;
}

struct user {
	long long uid, gid;
	long long *groups;
	size_t ngroups;
	const char *home;
};

static void add_group(struct user *u, long long g)
{
	for (size_t i = 0; i < u->ngroups; i++)
		if (u->groups[i] == g)
			return;
	if ((u->groups = realloc(u->groups, (u->ngroups + 1) * sizeof *u->groups)) == NULL)
		_exit(1);
	u->groups[u->ngroups++] = g;
}

// lookup_user is runner.lookupUser and resolveUser.
static int lookup_user(const char *spec, struct user *u)
{
	int pw_missing, gr_missing;
	char *pw = user_file("/etc/passwd", &pw_missing);
	if (pw == NULL && !pw_missing)
		return -1;
	char *gr = user_file("/etc/group", &gr_missing);
	if (gr == NULL && !gr_missing)
		return -1;
	struct pwent *users;
	size_t nusers;
	if (parse_passwd(pw, &users, &nusers) < 0)
		return -1;
	if (spec[0] == 0)
		spec = "0";
	char *user_arg = xstrdup(spec), *group_arg = "";
	char *colon = strchr(user_arg, ':');
	if (colon) {
		*colon = 0;
		group_arg = colon + 1;
	}
	memset(u, 0, sizeof *u);
	u->home = "/";
	long long uid, gid;
	if (parse_id(user_arg, &uid) && group_arg[0] && parse_id(group_arg, &gid)) {
		u->uid = uid;
		u->gid = gid;
		add_group(u, gid);
		for (size_t i = 0; i < nusers; i++)
			if (users[i].uid == uid) {
				u->home = users[i].home;
				break;
			}
		return 0;
	}
	long long uid_arg = 0;
	int uid_err = go_atoi(user_arg, &uid_arg);
	const char *matched = NULL;
	size_t i;
	for (i = 0; i < nusers; i++)
		if (uid_err == 0 ? users[i].uid == uid_arg : strcmp(users[i].name, user_arg) == 0)
			break;
	if (i < nusers) {
		matched = users[i].name;
		u->uid = users[i].uid;
		u->gid = users[i].gid;
		u->home = users[i].home;
	} else if (uid_err != 0) {
		fail(0, "unable to find user %s: no matching entries in passwd file", user_arg);
		g_kind = "nouser";
		return -1;
	} else if (uid_arg < 0 || uid_arg > 2147483647LL) {
		return fail(0, "user %s: uid out of range", user_arg);
	} else {
		u->uid = uid_arg;
	}
	long long *sgids = NULL;
	size_t nsgids = 0;
	if (group_arg[0] || (matched && matched[0])) {
		struct grent *groups;
		size_t ngroups;
		if (parse_group(gr, &groups, &ngroups) < 0)
			return -1;
		if (group_arg[0]) {
			long long gid_arg = 0;
			int gid_err = go_atoi(group_arg, &gid_arg);
			size_t j;
			for (j = 0; j < ngroups; j++)
				if (gid_err == 0 ? groups[j].gid == gid_arg : strcmp(groups[j].name, group_arg) == 0)
					break;
			if (j < ngroups) {
				u->gid = groups[j].gid;
			} else if (gid_err != 0) {
				fail(0, "unable to find group %s: no matching entries in group file", group_arg);
				g_kind = "nogroup";
				return -1;
			} else if (gid_arg < 0 || gid_arg > 2147483647LL) {
				return fail(0, "group %s: gid out of range", group_arg);
			} else {
				u->gid = gid_arg;
			}
		} else {
			for (size_t j = 0; j < ngroups; j++)
				for (size_t k = 0; k < groups[j].nmembers; k++)
					if (strcmp(groups[j].members[k], matched) == 0) {
						if ((sgids = realloc(sgids, (nsgids + 1) * sizeof *sgids)) == NULL)
							_exit(1);
						sgids[nsgids++] = groups[j].gid;
						break;
					}
		}
	}
	add_group(u, u->gid);
	for (size_t j = 0; j < nsgids; j++)
		add_group(u, sgids[j]);
	return 0;
}

// ---- the working directory (runner.chdirInRoot) ----

static int open_dir_at(int dirfd, const char *name)
{
	struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS};
	for (;;) {
		long fd = syscall(SYS_openat2, dirfd, name, &how, sizeof how);
		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
}

static int chdir_in_root(const char *clean, uid_t uid, gid_t gid)
{
	int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return fail(errno, "working directory %s: %s", clean, estr(errno));
	char *comps = xstrdup(clean), *save = NULL;
	int rc = 0;
	for (char *name = strtok_r(comps, "/", &save); name; name = strtok_r(NULL, "/", &save)) {
		int next = open_dir_at(fd, name);
		if (next == -ENOENT) {
			if (mkdirat(fd, name, 0755) == 0) {
				if (fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
					rc = fail(errno, "chown working directory %s: %s", clean, estr(errno));
					break;
				}
			} else if (errno != EEXIST) {
				rc = fail(errno, "create working directory %s: %s", clean, estr(errno));
				break;
			}
			next = open_dir_at(fd, name);
		}
		if (next == -ELOOP || next == -EXDEV) {
			rc = fail(-next, "working directory %s: leads outside the container", clean);
			break;
		}
		if (next < 0) {
			rc = fail(-next, "chdir %s: %s", clean, estr(-next));
			break;
		}
		close(fd);
		fd = next;
	}
	free(comps);
	if (rc == 0 && fchdir(fd) != 0)
		rc = fail(errno, "chdir %s: %s", clean, estr(errno));
	close(fd);
	if (rc < 0)
		return -1;
	// The kernel names a directory outside the root "(unreachable)/...".
	char wd[PATH_MAX + 1];
	if (syscall(SYS_getcwd, wd, sizeof wd) < 0 || wd[0] != '/')
		return fail(0, "working directory %s: leads outside the container", clean);
	return 0;
}

// ---- the command (runner.execProcess) ----

static const char *lookup_env(const char **env, size_t n, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = n; i-- > 0;)
		if (strncmp(env[i], key, kl) == 0 && env[i][kl] == '=')
			return env[i] + kl + 1;
	return NULL;
}

// check_executable is runner.checkExecutable: 0, or -1 with g_err the
// fs.PathError text and g_errno its errno.
static int check_executable(const char *p)
{
	struct stat st;
	if (stat(p, &st) != 0)
		return fail(errno, "stat %s: %s", p, estr(errno));
	if (S_ISDIR(st.st_mode))
		return fail(EISDIR, "exec %s: %s", p, estr(EISDIR));
	if (faccessat(AT_FDCWD, p, X_OK, AT_EACCESS) != 0)
		return fail(errno, "access %s: %s", p, estr(errno));
	return 0;
}

// look_path is runner.lookPath: a malloc'd path, or NULL.
static char *look_path(const char *file, const char *path_env)
{
	if (strchr(file, '/')) {
		if (check_executable(file) == 0)
			return xstrdup(file);
		const char *kind = g_errno == ENOENT ? "notfound" : "noexec";
		wrapf("exec: \"%s\"", file);
		g_kind = kind;
		return NULL;
	}
	char denied[sizeof g_err] = "";
	char *dirs = xstrdup(path_env);
	char *s = dirs;
	for (;;) {
		char *colon = strchr(s, ':');
		if (colon)
			*colon = 0;
		const char *dir = s[0] ? s : ".";
		char *p = malloc(strlen(dir) + strlen(file) + 2);
		if (p == NULL)
			_exit(1);
		sprintf(p, "%s/%s", dir, file);
		if (check_executable(p) == 0) {
			free(dirs);
			return p;
		}
		free(p);
		if (!denied[0] && g_errno != ENOENT && g_errno != ENOTDIR)
			snprintf(denied, sizeof denied, "%s", g_err);
		if (!colon)
			break;
		s = colon + 1;
	}
	free(dirs);
	if (denied[0]) {
		fail(0, "exec: \"%s\": %s", file, denied);
		g_kind = "noexec";
	} else {
		fail(ENOENT, "exec: \"%s\": executable file not found in $PATH", file);
		g_kind = "notfound";
	}
	return NULL;
}

static int install_seccomp(uint32_t flags, const char *prog, uint32_t len)
{
	if (len == 0)
		return 0;
	struct sock_fprog fprog = {.len = (unsigned short)(len / 8), .filter = (struct sock_filter *)prog};
	long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags | SECCOMP_FILTER_FLAG_TSYNC, &fprog);
	if (r < 0 && errno == EACCES)
		return fail(errno, "load seccomp filter: install seccomp filter: %s (needs no_new_privs or CAP_SYS_ADMIN)", estr(errno));
	if (r < 0)
		return fail(errno, "load seccomp filter: install seccomp filter: %s", estr(errno));
	if (r > 0)
		return fail(0, "load seccomp filter: install seccomp filter: thread %ld cannot be synchronized", r);
	return 0;
}

// limit_caps is runner.limitCapabilities.
static int limit_caps(uint64_t keep, uint32_t last)
{
	for (uint32_t c = 0; c <= last; c++) {
		if (c < 64 && (keep >> c) & 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0)
			return fail(errno, "drop capability %u: %s", c, estr(errno));
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
		return fail(errno, "clear ambient capabilities: %s", estr(errno));
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) != 0)
		return fail(errno, "get capabilities: %s", estr(errno));
	data[0].inheritable = data[1].inheritable = 0;
	if (syscall(SYS_capset, &hdr, data) != 0)
		return fail(errno, "clear inheritable capabilities: %s", estr(errno));
	return 0;
}

static int exec_process(struct rd *r)
{
	const char *user = rstr(r), *cwd = rstr(r);
	uint32_t nargs, nenv;
	const char **args = rstrs(r, &nargs);
	const char **env = rstrs(r, &nenv);
	uint32_t has_caps = r32(r);
	uint64_t keep = r64(r);
	uint32_t last_cap = r32(r), nnp = r32(r), sc_flags = r32(r);
	uint32_t sc_len;
	const char *sc_prog = rbytes(r, &sc_len);
	uint32_t nrl = r32(r);
	if (nargs == 0 || sc_len % 8 != 0 || nrl > 64)
		bad_plan();
	struct rlimit64 rls[64];
	int rtypes[64];
	for (uint32_t i = 0; i < nrl; i++) {
		rtypes[i] = (int)r32(r);
		rls[i].rlim_cur = r64(r);
		rls[i].rlim_max = r64(r);
	}
	uint32_t setgroups_deny = r32(r);

	struct user u;
	if (lookup_user(user, &u) < 0)
		return -1;
	if (chdir_in_root(cwd, (uid_t)u.uid, (gid_t)u.gid) < 0)
		return -1;
	// withDefaultEnv
	const char **envp = calloc(nenv + 3, sizeof *envp);
	if (envp == NULL)
		_exit(1);
	memcpy(envp, env, nenv * sizeof *envp);
	size_t ne = nenv;
	if (!lookup_env(env, nenv, "PATH"))
		envp[ne++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; // runner.DefaultPath
	if (!lookup_env(env, nenv, "HOME")) {
		char *h = malloc(strlen(u.home) + 6);
		if (h == NULL)
			_exit(1);
		sprintf(h, "HOME=%s", u.home);
		envp[ne++] = h;
	}
	if (sc_len && !nnp && install_seccomp(sc_flags, sc_prog, sc_len) < 0)
		return -1;
	if (has_caps && limit_caps(keep, last_cap) < 0)
		return -1;
	for (uint32_t i = 0; i < nrl; i++)
		if (setrlimit64(rtypes[i], &rls[i]) != 0)
			return fail(errno, "set rlimit %d to %llu:%llu: %s", rtypes[i], (unsigned long long)rls[i].rlim_cur,
				(unsigned long long)rls[i].rlim_max, estr(errno));
	// setCredentials; the parent-death signal goes with a credential
	// change: it is set again after (as runc does).
	int pdeath = 0;
	prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);
	gid_t *gl = calloc(u.ngroups + 1, sizeof *gl);
	if (gl == NULL)
		_exit(1);
	int only_primary = 1;
	for (size_t i = 0; i < u.ngroups; i++) {
		gl[i] = (gid_t)u.groups[i];
		if (u.groups[i] != u.gid)
			only_primary = 0;
	}
	if (syscall(SYS_setgroups, u.ngroups, gl) != 0 && !(errno == EPERM && only_primary && setgroups_deny))
		return fail(errno, "setgroups: %s", estr(errno));
	if (syscall(SYS_setresgid, u.gid, u.gid, u.gid) != 0)
		return fail(errno, "setgid %lld: %s", u.gid, estr(errno));
	if (syscall(SYS_setresuid, u.uid, u.uid, u.uid) != 0)
		return fail(errno, "setuid %lld: %s", u.uid, estr(errno));
	if (pdeath != 0 && prctl(PR_SET_PDEATHSIG, pdeath, 0, 0, 0) != 0)
		return fail(errno, "set parent death signal: %s", estr(errno));
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return fail(errno, "set no_new_privs: %s", estr(errno));
	umask(022);
	const char *path_env = lookup_env(envp, ne, "PATH");
	char *exe = look_path(args[0], path_env ? path_env : "");
	if (exe == NULL)
		return -1;
	if (sc_len && nnp && install_seccomp(sc_flags, sc_prog, sc_len) < 0)
		return -1;
	execve(exe, (char *const *)args, (char *const *)envp);
	int e = errno;
	fail(e, "exec: \"%s\": %s", args[0], estr(e));
	g_kind = e == ENOENT ? "notfound" : "noexec";
	return -1;
}

// ---- the rest of the plan ----

static int lo_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return fail(errno, "bring lo up: %s", estr(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	int rc = 0;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
		rc = fail(errno, "bring lo up: get flags: %s", estr(errno));
	} else {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
			rc = fail(errno, "bring lo up: set flags: %s", estr(errno));
	}
	close(s);
	return rc;
}

static int write_file(const char *p, const char *data)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0);
	if (fd < 0)
		return fail(errno, "open %s: %s", p, estr(errno));
	size_t n = strlen(data);
	ssize_t w = write(fd, data, n);
	int e = errno;
	close(fd);
	if (w < 0)
		return fail(e, "write %s: %s", p, estr(e));
	if ((size_t)w != n)
		return fail(EIO, "write %s: short write", p);
	return 0;
}

static int mask_path(const char *p)
{
	struct stat st;
	if (stat(p, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		return fail(errno, "mask %s: stat %s: %s", p, p, estr(errno));
	}
	int r = S_ISDIR(st.st_mode) ? mount("tmpfs", p, "tmpfs", MS_RDONLY, "size=0,mode=0555")
				    : mount("/dev/null", p, "", MS_BIND, "");
	if (r != 0)
		return fail(errno, "mask %s: %s", p, estr(errno));
	return 0;
}

static int readonly_path(const char *p)
{
	struct stat st;
	if (stat(p, &st) != 0 && errno == ENOENT)
		return 0;
	if (mount(p, p, "", MS_BIND | MS_REC, "") != 0)
		return fail(errno, "bind %s read-only: %s", p, estr(errno));
	if (mount("", p, "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "") != 0) {
		int e = errno;
		// /proc/sys and friends may only accept the flags they had.
		if (mount("", p, "", MS_BIND | MS_REMOUNT | MS_RDONLY, "") != 0)
			return fail(e, "remount %s read-only: %s", p, estr(e));
	}
	return 0;
}

static int run_op(uint32_t op, struct rd *r)
{
	switch (op) {
	case OP_CGROUPNS:
		if (unshare(CLONE_NEWCGROUP) != 0)
			return fail(errno, "unshare cgroup namespace: %s", estr(errno));
		return 0;
	case OP_ROOTPROP: {
		uint64_t flags = r64(r);
		const char *what = rstr(r);
		if (mount("", "/", "", flags, "") != 0)
			return fail(errno, "%s: %s", what, estr(errno));
		return 0;
	}
	case OP_MOUNT_ROOTFS: {
		const char *target = rstr(r);
		struct mspec m;
		read_mspec(r, &m);
		return mount_on(&m, target, NULL);
	}
	case OP_OPEN_ROOT: {
		const char *rootfs = rstr(r);
		g_rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (g_rootfd < 0)
			return fail(errno, "open rootfs: open %s: %s", rootfs, estr(errno));
		return 0;
	}
	case OP_STUBS: {
		g_upper = rstr(r);
		uint32_t n = r32(r);
		int rc = 0;
		for (uint32_t i = 0; i < n; i++) {
			const char *target = rstr(r);
			uint32_t dir = r32(r);
			if (rc < 0)
				continue;
			char *p = in_resolve(g_rootfd, target);
			rc = p == NULL ? -1 : stub_ensure(p, (int)dir);
			free(p);
		}
		report_stubs(); // before anything else can fail
		return rc;
	}
	case OP_PLANNED:
		return mount_planned(r);
	case OP_DEVICE:
		return make_device(r);
	case OP_RO_ROOTFS: {
		const char *rootfs = rstr(r);
		if (mount("", rootfs, "", MS_REMOUNT | MS_BIND | MS_RDONLY, "") != 0)
			return fail(errno, "remount rootfs read-only: %s", estr(errno));
		return 0;
	}
	case OP_PIVOT: {
		const char *rootfs = rstr(r);
		if (g_rootfd >= 0) {
			close(g_rootfd);
			g_rootfd = -1;
		}
		if (chdir(rootfs) != 0)
			return fail(errno, "chdir rootfs: %s", estr(errno));
		if (syscall(SYS_pivot_root, ".", ".") != 0)
			return fail(errno, "pivot_root: %s", estr(errno));
		if (umount2(".", MNT_DETACH) != 0)
			return fail(errno, "detach old root: %s", estr(errno));
		if (chdir("/") != 0)
			return fail(errno, "chdir /: %s", estr(errno));
		return 0;
	}
	case OP_MOUNT_PATH: {
		const char *src = rstr(r), *target = rstr(r), *type = rstr(r);
		uint64_t flags = r64(r);
		const char *data = rstr(r), *what = rstr(r);
		if (mount(src, target, type, flags, data) != 0)
			return fail(errno, "%s: %s", what, estr(errno));
		return 0;
	}
	case OP_MKDIR: {
		const char *p = rstr(r);
		uint32_t mode = r32(r);
		const char *what = rstr(r);
		if (mkdir(p, mode) != 0)
			return fail(errno, "%s: mkdir %s: %s", what, p, estr(errno));
		return 0;
	}
	case OP_SYMLINK: {
		const char *target = rstr(r), *p = rstr(r), *what = rstr(r);
		if (symlink(target, p) != 0)
			return fail(errno, "%s: symlink %s %s: %s", what, target, p, estr(errno));
		return 0;
	}
	case OP_SYSCTL: {
		const char *p = rstr(r), *value = rstr(r), *name = rstr(r);
		if (write_file(p, value) < 0)
			return wrapf("set sysctl %s=%s", name, value);
		return 0;
	}
	case OP_MASK:
		return mask_path(rstr(r));
	case OP_RO_PATH:
		return readonly_path(rstr(r));
	case OP_HOSTNAME: {
		uint32_t n;
		const char *h = rbytes(r, &n);
		if (sethostname(h, n) != 0)
			return fail(errno, "set hostname: %s", estr(errno));
		return 0;
	}
	case OP_LO:
		return lo_up();
	case OP_EXEC:
		return exec_process(r);
	}
	bad_plan();
}

// read_plan reads the rest of the config descriptor.
static unsigned char *read_plan(size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	unsigned char *b = malloc(cap);
	if (b == NULL)
		_exit(1);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			if ((b = realloc(b, cap)) == NULL)
				_exit(1);
		}
		ssize_t r = read(CONFIG_FD, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fail(errno, "read sandbox config: %s", estr(errno));
			die();
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return b;
}

__attribute__((constructor)) static void kiln_c_init(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc < 1 || argv == NULL || argv[0] == NULL || strcmp(argv[0], INIT_ARG0) != 0)
		return;
	unsigned char hdr;
	ssize_t n;
	do
		n = read(CONFIG_FD, &hdr, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || hdr != 'C')
		return; // the Go init (runner.Init) reads the rest, or fails on it
	// Nothing above the report descriptor goes on to the command: close
	// what the init may have inherited (the Go init's
	// closeInheritedFiles), keep the report pipe from the exec.
	syscall(SYS_close_range, REPORT_FD + 1, ~0U, 0);
	fcntl(REPORT_FD, F_SETFD, FD_CLOEXEC);
	// The command starts with no signal blocked, as from the Go init.
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(0);
	size_t len;
	unsigned char *plan = read_plan(&len);
	close(CONFIG_FD);
	struct rd r = {plan, plan + len};
	if (r32(&r) != PLAN_MAGIC)
		bad_plan();
	while (r.p < r.end) {
		uint32_t op = r32(&r);
		if (run_op(op, &r) < 0)
			die();
	}
	fail(0, "sandbox init: the plan has no command");
	die();
}
