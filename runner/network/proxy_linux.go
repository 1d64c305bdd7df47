package network

import "golang.org/x/sys/unix"

var (
	errAddrInUse = unix.EADDRINUSE
	errAccess    = unix.EACCES
)
