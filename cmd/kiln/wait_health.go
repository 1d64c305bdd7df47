package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
)

// waitCondition is `wait --condition healthy|unhealthy`, as podman's: it
// blocks until every container's health check reports the status. For
// CI's "start, wait until healthy, test", healthy fails (exit 1, with the
// last check's output) when the container stops, or when a check started
// after the wait leaves it unhealthy.
func waitCondition(cmd *cobra.Command, g *globals, condition string, args []string) error {
	if condition != container.HealthHealthy && condition != container.HealthUnhealthy {
		return fmt.Errorf("invalid condition %q: want not-running, healthy or unhealthy", condition)
	}
	cs := container.NewStore(storeRoot(g))
	var failed error
	for _, a := range args {
		c, err := cs.Get(a)
		if err == nil {
			if condition == container.HealthHealthy {
				err = c.WaitHealthy(true)
			} else {
				err = c.WaitUnhealthy()
			}
		}
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
			failed = errors.New("wait failed")
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), a)
	}
	return failed
}
