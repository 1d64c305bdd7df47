package main

import (
	"fmt"

	units "github.com/docker/go-units"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/runner"
)

// buildLimitFlags are build's --ulimit and --shm-size, for every RUN step.
type buildLimitFlags struct {
	ulimits []string
	shmSize string
}

func (f *buildLimitFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options of RUN steps (NAME=SOFT[:HARD], e.g. nofile=1024:2048)")
	fs.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm in RUN steps (default 64MB)")
}

func (f *buildLimitFlags) limits() (builder.RunLimits, error) {
	var l builder.RunLimits
	for _, u := range f.ulimits {
		ul, err := runner.ParseUlimit(u)
		if err != nil {
			return l, err
		}
		l.Ulimits = append(l.Ulimits, ul)
	}
	if f.shmSize != "" {
		n, err := units.RAMInBytes(f.shmSize)
		if err != nil || n <= 0 {
			return l, fmt.Errorf("invalid argument %q for \"--shm-size\" flag: must be a positive size", f.shmSize)
		}
		l.ShmSize = n
	}
	return l, nil
}
