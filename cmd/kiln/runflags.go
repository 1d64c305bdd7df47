package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	units "github.com/docker/go-units"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/container"
)

// cdiSpecDirsEnv overrides where CDI specs are read (colon-separated),
// for tests and unusual setups; the default is /etc/cdi and /var/run/cdi.
const cdiSpecDirsEnv = "KILN_CDI_SPEC_DIRS"

// runFlags are create's and run's --ulimit, --shm-size, --sysctl, --tmpfs,
// --gpus, --cidfile, --label-file and -a.
type runFlags struct {
	ulimits, sysctls, tmpfs, labelFiles, attach []string
	shmSize, cidfile, gpus                      string
}

func (f *runFlags) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options (NAME=SOFT[:HARD], e.g. nofile=1024:2048)")
	fs.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm (default 64MB)")
	fs.StringArrayVar(&f.sysctls, "sysctl", nil, "namespaced kernel parameters (NAME=VALUE)")
	fs.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory (PATH[:OPTIONS])")
	fs.StringVar(&f.gpus, "gpus", "", `GPU devices to add to the container ("all", a count, or "device=ID[,ID]"), through CDI`)
	fs.StringVar(&f.cidfile, "cidfile", "", "write the container ID to the file")
	fs.StringArrayVar(&f.labelFiles, "label-file", nil, "read in a line delimited file of labels")
	fs.StringArrayVarP(&f.attach, "attach", "a", nil, "attach to STDIN, STDOUT or STDERR")
}

// apply puts the flags in o (detach: run -d, which -a conflicts with). It
// runs before anything is created.
func (f *runFlags) apply(o *container.CreateOptions, detach bool) error {
	hc := &o.HostConfig
	for _, u := range f.ulimits {
		ul, err := runner.ParseUlimit(u)
		if err != nil {
			return err
		}
		hc.Ulimits = append(hc.Ulimits, ul)
	}
	if f.shmSize != "" {
		n, err := units.RAMInBytes(f.shmSize)
		if err != nil || n <= 0 {
			return fmt.Errorf("invalid argument %q for \"--shm-size\" flag: must be a positive size", f.shmSize)
		}
		hc.ShmSize = n
	}
	for _, s := range f.sysctls {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return fmt.Errorf("invalid argument %q for \"--sysctl\" flag: must be NAME=VALUE", s)
		}
		if hc.Sysctls == nil {
			hc.Sysctls = map[string]string{}
		}
		hc.Sysctls[k] = v
	}
	for _, t := range f.tmpfs {
		m, err := container.ParseTmpfsFlag(t)
		if err != nil {
			return err
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	if f.gpus != "" {
		r, err := container.ParseGpus(f.gpus)
		if err != nil {
			return err
		}
		hc.DeviceRequests = append(hc.DeviceRequests, r)
	}
	if dirs := os.Getenv(cdiSpecDirsEnv); dirs != "" {
		hc.CDISpecDirs = filepath.SplitList(dirs)
	}
	if len(f.labelFiles) > 0 {
		labels, err := readLabelFiles(f.labelFiles)
		if err != nil {
			return err
		}
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		for k, v := range labels {
			if _, ok := o.Labels[k]; !ok { // --label wins over --label-file, as docker
				o.Labels[k] = v
			}
		}
	}
	if len(f.attach) > 0 {
		if detach {
			return errors.New("conflicting options: cannot specify both --attach and --detach")
		}
		o.Streams = []string{}
		for _, a := range f.attach {
			s := strings.ToLower(a)
			if s != "stdin" && s != "stdout" && s != "stderr" {
				return fmt.Errorf("invalid argument %q for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR", a)
			}
			o.Streams = append(o.Streams, s)
		}
	}
	if f.cidfile != "" {
		if _, err := os.Stat(f.cidfile); err == nil {
			return fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", f.cidfile)
		}
	}
	return nil
}

// created writes the --cidfile once the container exists.
func (f *runFlags) created(id string) error {
	if f.cidfile == "" {
		return nil
	}
	file, err := os.OpenFile(f.cidfile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("write the container ID file: %w", err)
	}
	_, err = io.WriteString(file, id)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.cidfile)
		return fmt.Errorf("write the container ID file: %w", err)
	}
	return nil
}

// readLabelFiles reads docker's --label-file: KEY=VALUE lines (a bare KEY
// is an empty label), blank lines and # comments skipped; later files win.
func readLabelFiles(names []string) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("read label file: %w", err)
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, _ := strings.Cut(line, "=")
			if k == "" {
				f.Close()
				return nil, fmt.Errorf("%s:%d: a label needs a name", name, n)
			}
			out[k] = v
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read label file %s: %w", name, err)
		}
	}
	return out, nil
}

// attachStreams leaves out of a what the container's config does not
// attach (run -a): its output is discarded, its stdin not sent.
func attachStreams(a *container.Attach, cc container.ContainerConfig) {
	if !cc.AttachStdout && !cc.AttachStderr && !cc.AttachStdin {
		return // created detached (start -a attaches all)
	}
	if !cc.AttachStdout {
		a.Stdout = io.Discard
	}
	if !cc.AttachStderr {
		a.Stderr = io.Discard
	}
	if !cc.AttachStdin {
		a.Stdin = nil
	}
}
