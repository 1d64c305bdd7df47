package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/container"
)

// infoData is `kiln info` under docker's field names, for --format.
type infoData struct {
	Containers, ContainersRunning, ContainersPaused, ContainersStopped int
	Images                                                             int
	Driver                                                             string
	DriverStatus                                                       [][2]string
	CgroupVersion                                                      string
	Namespaces                                                         []string
	KernelVersion, OperatingSystem, OSType, Architecture               string
	NCPU                                                               int
	MemTotal                                                           int64
	DockerRootDir                                                      string
	Name                                                               string
	ServerVersion                                                      string
	// Rootless: an ordinary user's kiln, in its user namespace mapping
	// UIDMap and GIDMap ("inside:host:count"), with its runtime directory
	// and, when it has no cgroups, why (CgroupsUnavailable).
	Rootless           bool
	UIDMap, GIDMap     []string `json:",omitempty"`
	RuntimeDir         string
	CgroupsUnavailable string `json:",omitempty"`
}

func newInfoCommand(g *globals) *cobra.Command {
	var f string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			ids, err := s.ImageIDs()
			if err != nil {
				return err
			}
			cs, err := container.NewStore(s.Root()).List()
			if err != nil {
				return err
			}
			var uts unix.Utsname
			unix.Uname(&uts)
			hostname, _ := os.Hostname()
			d := infoData{
				Images: len(ids), Driver: "overlay2",
				DriverStatus:  [][2]string{{"Backing Filesystem", fsType(s.Root())}, {"Overlay Supported", fmt.Sprint(hasFilesystem("overlay"))}},
				CgroupVersion: cgroupVersion(), Namespaces: namespaces(),
				KernelVersion: unix.ByteSliceToString(uts.Release[:]), OperatingSystem: osName(), OSType: "linux",
				Architecture: unix.ByteSliceToString(uts.Machine[:]), NCPU: runtime.NumCPU(),
				DockerRootDir: s.Root(), Name: hostname, ServerVersion: buildVersion().Version,
			}
			if err := rootlessInfo(&d); err != nil {
				return err
			}
			for _, c := range cs {
				d.Containers++
				switch {
				case c.State.Paused:
					d.ContainersPaused++
				case c.State.Running:
					d.ContainersRunning++
				default:
					d.ContainersStopped++
				}
			}
			var si unix.Sysinfo_t
			if unix.Sysinfo(&si) == nil {
				d.MemTotal = int64(si.Totalram) * int64(si.Unit)
			}
			out := cmd.OutOrStdout()
			if f != "" {
				return format.Object(out, f, d)
			}
			fmt.Fprintf(out, "Containers: %d\n Running: %d\n Paused: %d\n Stopped: %d\n", d.Containers, d.ContainersRunning, d.ContainersPaused, d.ContainersStopped)
			fmt.Fprintf(out, "Images: %d\n", d.Images)
			fmt.Fprintf(out, "Store Root: %s\n", d.DockerRootDir)
			fmt.Fprintf(out, "Storage Driver: %s\n", d.Driver)
			for _, kv := range d.DriverStatus {
				fmt.Fprintf(out, " %s: %s\n", kv[0], kv[1])
			}
			fmt.Fprintf(out, "Cgroup Version: %s\n", d.CgroupVersion)
			if d.CgroupsUnavailable != "" {
				fmt.Fprintf(out, " Cgroups: none (%s)\n", d.CgroupsUnavailable)
			}
			fmt.Fprintf(out, "Rootless: %t\n", d.Rootless)
			if d.Rootless {
				fmt.Fprintf(out, " UID Map: %s\n GID Map: %s\n", strings.Join(d.UIDMap, " "), strings.Join(d.GIDMap, " "))
			}
			fmt.Fprintf(out, "Runtime Dir: %s\n", d.RuntimeDir)
			fmt.Fprintf(out, "Namespaces: %s\n", strings.Join(d.Namespaces, " "))
			fmt.Fprintf(out, "Kernel Version: %s\n", d.KernelVersion)
			fmt.Fprintf(out, "Operating System: %s\n", d.OperatingSystem)
			fmt.Fprintf(out, "OSType: %s\n", d.OSType)
			fmt.Fprintf(out, "Architecture: %s\n", d.Architecture)
			fmt.Fprintf(out, "CPUs: %d\n", d.NCPU)
			if d.MemTotal > 0 {
				fmt.Fprintf(out, "Total Memory: %s\n", humanSize(d.MemTotal))
			}
			fmt.Fprintf(out, "Name: %s\n", d.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&f, "format", "f", "", "format the output using the given Go template, or json")
	return cmd
}

// rootlessInfo fills in what rootless kiln differs in.
func rootlessInfo(d *infoData) error {
	d.Rootless, d.RuntimeDir = rootless.Active(), rootless.RuntimeDir()
	if why := runner.CgroupsUnavailable(); why != nil {
		d.CgroupsUnavailable = why.Error()
	}
	if !d.Rootless {
		return nil
	}
	uids, gids, err := rootless.IDMaps()
	if err != nil {
		return err
	}
	for _, r := range uids {
		d.UIDMap = append(d.UIDMap, r.String())
	}
	for _, r := range gids {
		d.GIDMap = append(d.GIDMap, r.String())
	}
	return nil
}

func hasFilesystem(name string) bool {
	data, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == name {
			return true
		}
	}
	return false
}

func fsType(path string) string {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("0x%x", st.Type)
}

func cgroupVersion() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) != nil {
		return "none"
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "2"
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		return "1 (hybrid)"
	}
	return "1"
}

func namespaces() []string {
	var out []string
	for _, ns := range []string{"mnt", "pid", "uts", "ipc", "net", "cgroup", "user"} {
		if _, err := os.Stat("/proc/self/ns/" + ns); err == nil {
			out = append(out, ns)
		}
	}
	return out
}

func osName() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "unknown"
}
