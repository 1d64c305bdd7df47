package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/runner"
)

// cgroupParents are the directories of the cgroup "kiln" (the parent of
// containers' and builds' cgroups, which stays once made, as docker's
// does) that did not exist when the tests started: the suite removes them
// at its end, so that it leaves no cgroup behind.
type cgroupParents []string

func newCgroupParents() cgroupParents {
	var made cgroupParents
	for _, d := range runner.OpenCgroup("kiln").Dirs() {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			made = append(made, d)
		}
	}
	return made
}

// remove removes the parents the tests made. A --rm container's monitor
// removes its cgroup after its client returned, so a parent may still
// have a child for a moment: remove waits for it to go, and reports a
// child that stays (a cgroup the tests leaked).
func (ps cgroupParents) remove() error {
	var errs []error
	for _, d := range ps {
		var err error
		for range 200 {
			if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
				err = nil
				break
			}
			if !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s the tests made: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
