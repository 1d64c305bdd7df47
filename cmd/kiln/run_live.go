package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/runner/container"
)

// liveFlags are the health check and live resource flags of create and run.
type liveFlags struct {
	healthCmd                                                string
	healthInterval, healthTimeout, healthStart, healthStartI time.Duration
	healthRetries                                            int
	noHealthcheck                                            bool
	memorySwap, cpusetCpus                                   string
}

func (f *liveFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.healthCmd, "health-cmd", "", "command to run to check health")
	fs.DurationVar(&f.healthInterval, "health-interval", 0, "time between running the check (ms|s|m|h) (default 0s)")
	fs.DurationVar(&f.healthTimeout, "health-timeout", 0, "maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&f.healthStart, "health-start-period", 0, "start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&f.healthStartI, "health-start-interval", 0, "time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.IntVar(&f.healthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	fs.BoolVar(&f.noHealthcheck, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
	fs.StringVar(&f.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
}

// apply sets the options from the flags and the image's raw config (for
// its HEALTHCHECK).
func (f *liveFlags) apply(cmd *cobra.Command, o *container.CreateOptions, rawImage []byte) error {
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(rawImage, &img); err == nil {
		o.ImageHealthcheck = img.Config.Healthcheck
	}
	changed := false
	for _, name := range []string{"health-cmd", "health-interval", "health-timeout", "health-start-period", "health-start-interval", "health-retries"} {
		changed = changed || cmd.Flags().Changed(name)
	}
	if f.noHealthcheck {
		if changed {
			return errors.New("--no-healthcheck conflicts with --health-* options")
		}
		o.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	} else if changed {
		for name, d := range map[string]time.Duration{"--health-interval": f.healthInterval, "--health-timeout": f.healthTimeout,
			"--health-start-period": f.healthStart, "--health-start-interval": f.healthStartI} {
			if d != 0 && d < time.Millisecond {
				return fmt.Errorf("%s cannot be less than 1ms", name)
			}
			if d < 0 {
				return fmt.Errorf("%s cannot be negative", name)
			}
		}
		if f.healthRetries < 0 {
			return errors.New("--health-retries cannot be negative")
		}
		hc := &container.HealthConfig{
			Interval: f.healthInterval, Timeout: f.healthTimeout, StartPeriod: f.healthStart,
			StartInterval: f.healthStartI, Retries: f.healthRetries,
		}
		if f.healthCmd != "" {
			hc.Test = []string{"CMD-SHELL", f.healthCmd}
		}
		if hc.Test == nil && !healthEnabledIn(o.ImageHealthcheck) {
			return errors.New("--health-* options need a health check: --health-cmd or the image's HEALTHCHECK")
		}
		o.Healthcheck = hc
	}
	hc := &o.HostConfig
	if f.memorySwap != "" {
		n, err := container.ParseMemorySwap(f.memorySwap, hc.Memory)
		if err != nil {
			return err
		}
		hc.MemorySwap = n
	}
	if f.cpusetCpus != "" {
		if err := container.ValidateCpuset(f.cpusetCpus); err != nil {
			return err
		}
		hc.CpusetCpus = f.cpusetCpus
	}
	return nil
}

func healthEnabledIn(hc *container.HealthConfig) bool {
	return hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}
