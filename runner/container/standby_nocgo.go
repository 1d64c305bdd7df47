//go:build linux && !cgo

package container

// constructorStandby: built without cgo, no constructor starts a monitor.
func constructorStandby() (pid int, fds [3]int, root, net string, ok bool) {
	return 0, fds, "", "", false
}

// EarlyStandbyFlag: built without cgo, no constructor reads any flag.
func EarlyStandbyFlag(name string) StandbyFlag { return StandbyFlagGo }
