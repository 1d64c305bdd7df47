package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
)

func newInfoCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "info",
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
			var uts unix.Utsname
			unix.Uname(&uts)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Images: %d\n", len(ids))
			fmt.Fprintf(out, "Store Root: %s\n", s.Root())
			fmt.Fprintf(out, "Storage Driver: overlay2\n")
			fmt.Fprintf(out, " Backing Filesystem: %s\n", fsType(s.Root()))
			fmt.Fprintf(out, " Overlay Supported: %v\n", hasFilesystem("overlay"))
			fmt.Fprintf(out, "Cgroup Version: %s\n", cgroupVersion())
			fmt.Fprintf(out, "Namespaces: %s\n", strings.Join(namespaces(), " "))
			fmt.Fprintf(out, "Kernel Version: %s\n", unix.ByteSliceToString(uts.Release[:]))
			fmt.Fprintf(out, "Operating System: %s\n", osName())
			fmt.Fprintf(out, "OSType: linux\n")
			fmt.Fprintf(out, "Architecture: %s\n", unix.ByteSliceToString(uts.Machine[:]))
			fmt.Fprintf(out, "CPUs: %d\n", runtime.NumCPU())
			var si unix.Sysinfo_t
			if unix.Sysinfo(&si) == nil {
				fmt.Fprintf(out, "Total Memory: %s\n", humanSize(int64(si.Totalram)*int64(si.Unit)))
			}
			return nil
		},
	}
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
