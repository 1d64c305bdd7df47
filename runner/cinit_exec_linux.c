//go:build linux && cgo

// The command of the C init (cinit_linux.c): its user, working directory,
// capabilities, limits and seccomp filter, and its exec.
#define _GNU_SOURCE
#include "cinit_linux.h"

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
// strings.TrimSpace); NULL at the end, or with *toolong for a line of
// 1 MiB or more.
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
	if (strlen(line) >= (1 << 20)) // with its newline, more than bufio.Scanner's buffer
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

int exec_process(struct rd *r)
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

