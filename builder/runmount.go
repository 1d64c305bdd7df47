package builder

import (
	"context"
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/kiln-build/kiln/runner"
)

// runMounts are the mounts a RUN's --mount flags ask for.
type runMounts struct {
	mounts []runner.Mount
	// key is what the mounts add to the step's cache key (never a secret's content).
	key any
	// release gives back what the mounts hold (locks on cache mounts, temp files).
	release func()
}

// prepareRunMounts turns a RUN's --mount flags into sandbox mounts.
func (b *build) prepareRunMounts(ctx context.Context, st *stage, c *instructions.RunCommand) (*runMounts, error) {
	m := &runMounts{release: func() {}}
	for _, mt := range instructions.GetMounts(c) {
		return m, fmt.Errorf("RUN --mount=type=%s is not supported yet", mt.Type)
	}
	return m, nil
}
