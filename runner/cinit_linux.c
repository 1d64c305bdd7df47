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
// and the init exits 1. cinit_root_linux.c has the root and its mounts,
// cinit_exec_linux.c the command.
#define _GNU_SOURCE
#include "cinit_linux.h"

// ---- errors: the message and kind reported to the parent ----

char g_err[8192];
const char *g_kind = "";
int g_errno; // the errno an error wraps, 0 if none

// estr is the text Go gives errno e ("no such file or directory").
const char *estr(int e)
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

int fail(int e, const char *fmt, ...)
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
int wrapf(const char *fmt, ...)
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


void bput(struct buf *b, const void *d, size_t n)
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

void bputs(struct buf *b, const char *s) { bput(b, s, strlen(s)); }

void bprintf(struct buf *b, const char *fmt, ...)
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
void bjson(struct buf *b, const char *s)
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

void write_all(int fd, const char *p, size_t n)
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
void die(void)
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


void bad_plan(void)
{
	fail(0, "read sandbox config: malformed plan");
	die();
}

uint32_t r32(struct rd *r)
{
	if (r->end - r->p < 4)
		bad_plan();
	uint32_t v;
	memcpy(&v, r->p, 4);
	r->p += 4;
	return v;
}

uint64_t r64(struct rd *r)
{
	if (r->end - r->p < 8)
		bad_plan();
	uint64_t v;
	memcpy(&v, r->p, 8);
	r->p += 8;
	return v;
}

// rbytes reads a length and that many bytes, followed by a NUL.
const char *rbytes(struct rd *r, uint32_t *len)
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

const char *rstr(struct rd *r)
{
	uint32_t n;
	const char *s = rbytes(r, &n);
	if (strlen(s) != n)
		bad_plan();
	return s;
}

const char **rstrs(struct rd *r, uint32_t *count)
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

char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		_exit(1);
	return d;
}

char *path_join(const char *dir, const char *name)
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

char *path_dir(const char *p)
{
	const char *s = strrchr(p, '/');
	if (s == NULL || s == p)
		return xstrdup("/");
	return strndup(p, (size_t)(s - p));
}

const char *path_base(const char *p)
{
	if (strcmp(p, "/") == 0)
		return "/";
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

// rel is inroot.Rel of a clean absolute path.
const char *rel(const char *p)
{
	while (*p == '/')
		p++;
	return *p ? p : ".";
}

// ---- the other operations, and the constructor ----

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
