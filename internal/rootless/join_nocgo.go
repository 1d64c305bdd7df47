//go:build !cgo

package rootless

// canJoin: built without cgo, this binary cannot join a user namespace (a
// Go program is multithreaded before main runs).
const canJoin = false

func joinedEarly() (uid int, rt string, ok bool) { return 0, "", false }

func cRuntimeDir(uid int) (string, bool) { return "", false }
