// Package runner is kiln's sandbox: it executes a Dockerfile RUN step (and,
// later, containers) in fresh mount, PID, UTS and IPC namespaces (plus a
// network namespace for Network "none") on top of an overlay of plain
// snapshot directories.
//
// Run re-executes the current binary (/proc/self/exe) with argv[0]
// "kiln-runner-init"; main() must therefore start with
//
//	if runner.IsInit() { runner.Init() }
//
// In a binary built with cgo that init is C (cinit_linux.c): a constructor
// that runs before the Go runtime, and carries out a plan the parent
// computed (cplan_linux.go), so that no sandbox pays the Go runtime's
// start; runner.Init is the init only for what the plan does not cover (a
// terminal, a tiny init, OCI hooks, a volume to fill from the image).
//
// The init mounts the overlay and the usual /proc, /dev, /sys,
// /etc/resolv.conf and /etc/hosts, pivots into the rootfs, switches to the
// image's user and execs the command, which becomes PID 1. Mount points that
// the image lacks are created as stubs and removed from the upper directory
// after the run, so the upper directory holds exactly the step's changes.
//
// StartExec starts a process inside a running sandbox (kiln exec): it
// joins the sandbox's namespaces with one setns(2) on a pidfd from a locked
// OS thread that is thrown away afterwards, so the caller's other threads
// never change namespace. With Spec.Init the sandbox init stays PID 1 as a
// tiny init (tinyinit_linux.go) instead of exec'ing the command.
//
// Mounts are data (Mount, built by OverlayMount) mounted by MountOverlay.
package runner
