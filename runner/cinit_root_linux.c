//go:build linux && cgo

// The sandbox root of the C init (cinit_linux.c): paths resolved inside it,
// mount stubs, mounts and device nodes.
#define _GNU_SOURCE
#include "cinit_linux.h"

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
char *in_resolve(int rootfd, const char *p)
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
int g_rootfd = -1;
const char *g_upper;

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
int stub_ensure(const char *p, int dir)
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

// bbase64 puts s as a JSON string of its bytes in base64 (a Go []byte):
// stubEntry.Path, which need not be UTF-8.
static void bbase64(struct buf *b, const char *s)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	bputs(b, "\"");
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		char q[4] = {tab[v >> 18 & 63], tab[v >> 12 & 63], i + 1 < n ? tab[v >> 6 & 63] : '=', i + 2 < n ? tab[v & 63] : '='};
		bput(b, q, 4);
	}
	bputs(b, "\"");
}

static void bts(struct buf *b, const char *name, struct timespec t)
{
	bprintf(b, ",\"%s\":{\"Sec\":%lld,\"Nsec\":%ld}", name, (long long)t.tv_sec, t.tv_nsec);
}

// report_stubs is stubMaker.finish and the report of its entries.
void report_stubs(void)
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
			bbase64(&b, s->path);
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


void read_mspec(struct rd *r, struct mspec *m)
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
int mount_on(struct mspec *m, const char *target, struct mpoint *mp)
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
int mount_planned(struct rd *r)
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
int make_device(struct rd *r)
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

