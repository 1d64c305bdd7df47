package main

import (
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/container"
)

// isolationFlags are create's and run's --init, --device and --security-opt.
type isolationFlags struct {
	init        bool
	devices     []string
	securityOpt []string
}

func (f *isolationFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fs.StringArrayVar(&f.devices, "device", nil, "add a host device to the container")
	fs.StringArrayVar(&f.securityOpt, "security-opt", nil, "security options: seccomp=unconfined|PROFILE.json, no-new-privileges, systempaths=unconfined")
}

// apply puts the flags in hc; a bad --device is an error.
func (f *isolationFlags) apply(hc *container.HostConfig) error {
	hc.Init = f.init
	opts, err := runner.InlineSecurityOpt(f.securityOpt)
	if err != nil {
		return err
	}
	hc.SecurityOpt = opts
	for _, d := range f.devices {
		if container.IsCDIDevice(d) { // vendor.com/class=name: through CDI (runflags.go)
			hc.DeviceRequests = append(hc.DeviceRequests, container.CDIDeviceRequest(d))
			continue
		}
		m, err := container.ParseDevice(d)
		if err != nil {
			return err
		}
		hc.Devices = append(hc.Devices, m)
	}
	return nil
}
