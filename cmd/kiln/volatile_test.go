package main

import (
	"strings"
	"testing"
)

// TestContainerRootNotVolatile: a container's root overlay keeps fsync's
// meaning (only RUN steps, whose layers the store syncs, mount theirs
// volatile): a container outlives the command that started it, and its
// writable layer is mounted again each time it starts.
func TestContainerRootNotVolatile(t *testing.T) {
	e := newContainerEnv(t)
	line := e.kiln("run", "bb", "awk", `$5 == "/"`, "/proc/self/mountinfo")
	if !strings.Contains(line, " - overlay ") || strings.Contains(line, "volatile") {
		t.Fatalf("a container's root mount is %q, want an overlay without volatile", line)
	}
}
