//go:build linux && cgo

package rootless

import "C" // join_linux.c: the constructor that joins the namespaces

// canJoin: this binary has the constructor that joins the user namespace.
const canJoin = true
