// Package container is kiln's container lifecycle without a daemon: each
// container is a directory under <store root>/containers/<id>/ and, while it
// runs, a small monitor process (this same binary re-executed, see IsMonitor)
// that owns its stdio and log, reaps it, records its exit and applies its
// restart policy. The container itself is a runner sandbox.
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
//
// Names are symlinks <store root>/container-names/<name> -> <id>, so that a
// name is taken atomically.
package container
