//go:build linux && cgo

package rootless

// #include <unistd.h>
// #include "join_linux.h"
import "C" // join_linux.c: the constructor that joins the namespaces

import "unsafe"

// canJoin: this binary has the constructor that joins the user namespace.
const canJoin = true

// joinedEarly reports whether the constructor joined the user namespace
// itself (the steady state: the pause process lived), with the user's uid
// on the host and the runtime directory it found the pause process in.
func joinedEarly() (uid int, rt string, ok bool) {
	if C.kiln_rootless_joined_uid < 0 {
		return 0, "", false
	}
	return int(C.kiln_rootless_joined_uid), C.GoString(&C.kiln_rootless_joined_rt[0]), true
}

// cRuntimeDir is the constructor's runtime directory of uid ("", false
// when it would leave the entry to Go), for the test that Go and C agree.
func cRuntimeDir(uid int) (string, bool) {
	var buf [C.PATH_MAX]C.char
	fd := C.kiln_rootless_runtime_dir(C.uid_t(uid), &buf[0], C.size_t(len(buf)))
	if fd < 0 {
		return "", false
	}
	C.close(fd)
	return C.GoString((*C.char)(unsafe.Pointer(&buf[0]))), true
}
