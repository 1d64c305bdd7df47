// Package inroot opens, resolves and creates paths inside a directory as if
// that directory were "/": absolute symlinks, relative ones and ".." never
// lead outside it, whatever a concurrent process does to the tree meanwhile.
// It is the one place kiln resolves a container path on the host: the layer
// applier, the builder's COPY/WORKDIR destinations and the sandbox init's
// mount points all go through it.
//
// Every function works on a directory descriptor (the root, opened by the
// caller), never on a host path that the kernel would walk again: a name
// checked and then used by path can be swapped for a symlink in between.
// Go's os.Root does not fit: it refuses a symlink that points outside the
// root, where a container path resolves it inside (an image's /etc/hosts ->
// /run/hosts means <root>/run/hosts).
//
// It is Linux only (openat2 with RESOLVE_IN_ROOT).
package inroot
