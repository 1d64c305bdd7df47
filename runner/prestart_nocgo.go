//go:build linux && !cgo

package runner

// constructorInit: built without cgo, no constructor starts an init.
func constructorInit() (pid int, fds [4]int, ok bool) { return 0, fds, false }

// cInitBuilt: built without cgo, there is no C init (cplan_linux.go).
const cInitBuilt = false
