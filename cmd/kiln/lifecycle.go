package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
)

// storeRoot is the absolute store root (container commands need no lock on
// the image store).
func storeRoot(g *globals) string {
	if abs, err := filepath.Abs(g.root); err == nil {
		return abs
	}
	return g.root
}

// eachContainer runs fn on every named container, printing errors like
// docker and failing at the end if any failed.
func eachContainer(cmd *cobra.Command, g *globals, args []string, fn func(*container.Container) error) error {
	cs := container.NewStore(storeRoot(g))
	var failed error
	for _, a := range args {
		c, err := cs.Get(a)
		if err == nil {
			err = fn(c)
		}
		if err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
			failed = exitError(1)
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), a)
	}
	return failed
}

func newStopCommand(g *globals) *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, g, args, func(c *container.Container) error {
				t := c.StopTimeout()
				if cmd.Flags().Changed("time") {
					t = time.Duration(timeout) * time.Second
				}
				if signal != "" {
					c.Config.Config.StopSignal = signal
				}
				return c.Stop(t)
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send to the container")
	return cmd
}

func newRestartCommand(g *globals) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			return eachContainer(cmd, g, args, func(c *container.Container) error {
				t := c.StopTimeout()
				if cmd.Flags().Changed("time") {
					t = time.Duration(timeout) * time.Second
				}
				if err := c.Stop(t); err != nil {
					return err
				}
				r, err := cs.Start(c, nil)
				if err != nil {
					return err
				}
				return r.Close()
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	return cmd
}

func newKillCommand(g *globals) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(cmd, g, args, func(c *container.Container) error {
				if err := c.Kill(signal); err != nil {
					return err
				}
				if signal == "" || signal == "KILL" || signal == "SIGKILL" || signal == "9" {
					return c.WaitExit(10 * time.Second)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal to send to the container")
	return cmd
}

func newRmCommand(g *globals) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			return eachContainer(cmd, g, args, func(c *container.Container) error {
				return cs.Remove(c, force, volumes)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}

func newWaitCommand(g *globals) *cobra.Command {
	var condition string
	cmd := &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if condition != "" && condition != "not-running" {
				return waitCondition(cmd, g, condition, args) // wait_health.go
			}
			cs := container.NewStore(storeRoot(g))
			var failed error
			for _, a := range args {
				c, err := cs.Get(a)
				if err == nil {
					err = c.WaitExit(-1)
				}
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
					failed = errors.New("wait failed")
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), c.State.ExitCode)
			}
			return failed
		},
	}
	cmd.Flags().StringVar(&condition, "condition", "", "wait for: not-running (default), healthy (fails if the container stops or turns unhealthy), unhealthy")
	return cmd
}
