// What join_linux.c gives Go (join_cgo.go).
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

extern int kiln_rootless_joined_uid;
extern char kiln_rootless_joined_rt[PATH_MAX];

// kiln_rootless_runtime_dir writes uid's kiln runtime directory (enter.go's
// userRuntimeDir, without making anything) to rt and returns it open
// (O_PATH), or -1 when it is not there or fails ownDir's checks.
int kiln_rootless_runtime_dir(uid_t uid, char *rt, size_t size);
