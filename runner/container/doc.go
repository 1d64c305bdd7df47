// Package container is kiln's container lifecycle without a daemon: each
// container is a directory under <store root>/containers/<id>/ and, while it
// runs, a small monitor process (this same binary re-executed, see IsMonitor)
// that owns its stdio and log, reaps it, records its exit and applies its
// restart policy. The container itself is a runner sandbox. Each `exec`
// has an exec monitor of its own (the same binary, see execMonitor) that is
// its parent, owns its stdio and reports its exit.
//
// Clients (run, start -a, attach, exec) talk to monitors through the attach
// protocol (stream.go): frames of stdin, stdout, stderr, window sizes and
// the exit code over a socket pair handed over at start, or, for attach,
// over the monitor's attach.sock.
//
// Layout of a container directory:
//
//	config.json        what was asked (Docker-shaped Config, HostConfig, Image, Layers, lowers)
//	state.json         State, replaced atomically by whoever changes it
//	<id>-json.log      stdout and stderr, one JSON object per line (Docker's json-file format)
//	upper/ work/       the writable overlay layer and its workdir
//	rootfs/            the mount point of the merged tree (inside the container's mount namespace only)
//	hosts hostname resolv.conf   bind-mounted into the container
//	stopping           present while stop/kill wants no restart
//	monitor.log        the monitor's own diagnostics
//	attach.sock        the monitor's attach socket, while it runs
//
// Names are symlinks <store root>/container-names/<name> -> <id>, so that a
// name is taken atomically.
package container
