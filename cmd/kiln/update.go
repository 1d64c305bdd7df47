package main

import (
	"errors"
	"fmt"
	"math"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
)

func newUpdateCommand(g *globals) *cobra.Command {
	var memory, memorySwap, cpusetCpus, restart string
	var cpus float64
	var cpuShares, pidsLimit int64
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var o container.UpdateOptions
			fl := cmd.Flags()
			if fl.Changed("memory") {
				n, err := container.ParseBytes(memory)
				if err != nil {
					return fmt.Errorf("invalid argument %q for \"-m, --memory\" flag: %w", memory, err)
				}
				if n < 6<<20 {
					return errors.New("minimum memory limit allowed is 6MB")
				}
				o.Memory = &n
			}
			if fl.Changed("memory-swap") {
				var mem int64 = 1 // checked against the container's limit by Update
				if o.Memory != nil {
					mem = *o.Memory
				}
				n, err := container.ParseMemorySwap(memorySwap, mem)
				if err != nil {
					return err
				}
				o.MemorySwap = &n
			}
			if fl.Changed("cpus") {
				if cpus < 0 || math.IsNaN(cpus) || math.IsInf(cpus, 0) {
					return fmt.Errorf("invalid argument %v for \"--cpus\" flag", cpus)
				}
				n := int64(cpus * 1e9)
				o.NanoCpus = &n
			}
			if fl.Changed("cpu-shares") {
				o.CpuShares = &cpuShares
			}
			if fl.Changed("pids-limit") {
				o.PidsLimit = &pidsLimit
			}
			if fl.Changed("cpuset-cpus") {
				if err := container.ValidateCpuset(cpusetCpus); err != nil {
					return err
				}
				o.CpusetCpus = &cpusetCpus
			}
			if fl.Changed("restart") {
				p, err := container.ParseRestartPolicy(restart)
				if err != nil {
					return err
				}
				o.RestartPolicy = &p
			}
			if o == (container.UpdateOptions{}) {
				return errors.New("you must provide one or more flags when using this command")
			}
			return eachContainer(cmd, g, args, func(c *container.Container) error { return c.Update(o) })
		},
	}
	f := cmd.Flags()
	f.StringVarP(&memory, "memory", "m", "", "memory limit")
	f.StringVar(&memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: -1 to enable unlimited swap")
	f.Float64Var(&cpus, "cpus", 0, "number of CPUs")
	f.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "tune container pids limit (-1 for unlimited)")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&restart, "restart", "", "restart policy to apply when a container exits")
	return cmd
}
