package seccomp

import (
	"fmt"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"golang.org/x/sys/unix"
)

// kernelVersion returns the running kernel's "kernel.major" version, parsed
// as moby's profiles/seccomp does ("6.18.44-fc" and "6.18-1-amd64" are 6.18).
func kernelVersion() (mobyseccomp.KernelVersion, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return mobyseccomp.KernelVersion{}, fmt.Errorf("%w: %w", errNoKernel, err)
	}
	return parseRelease(unix.ByteSliceToString(uts.Release[:]))
}

func parseRelease(release string) (mobyseccomp.KernelVersion, error) {
	var v mobyseccomp.KernelVersion
	if _, err := fmt.Sscanf(release, "%d.%d", &v.Kernel, &v.Major); err != nil {
		return v, fmt.Errorf("%w: parse %q: %w", errNoKernel, release, err)
	}
	return v, nil
}
