package main

import (
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/runner/container"
)

// isolationFlags are create's and run's --init and --device.
type isolationFlags struct {
	init    bool
	devices []string
}

func (f *isolationFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fs.StringArrayVar(&f.devices, "device", nil, "add a host device to the container")
}

// apply puts the flags in hc; a bad --device is an error.
func (f *isolationFlags) apply(hc *container.HostConfig) error {
	hc.Init = f.init
	for _, d := range f.devices {
		m, err := container.ParseDevice(d)
		if err != nil {
			return err
		}
		hc.Devices = append(hc.Devices, m)
	}
	return nil
}
