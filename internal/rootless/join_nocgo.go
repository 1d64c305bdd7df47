//go:build !cgo

package rootless

// canJoin: built without cgo, this binary cannot join a user namespace (a
// Go program is multithreaded before main runs).
const canJoin = false
