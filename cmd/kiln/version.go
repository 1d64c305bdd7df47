package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
)

// versionInfo is `kiln version` (docker's Client block, under docker's
// field names, with the store's schema version).
type versionInfo struct {
	Version     string
	GoVersion   string
	GitCommit   string
	BuildTime   string
	Modified    bool
	Os          string
	Arch        string
	StoreSchema int
}

type versionOutput struct {
	Client versionInfo
}

// buildVersion reads what the Go toolchain stamped into the binary: the
// module version and the VCS revision, time and dirty flag.
func buildVersion() versionInfo {
	v := versionInfo{Version: "dev", GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH, StoreSchema: cache.SchemaVersion}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.GitCommit = s.Value
		case "vcs.time":
			v.BuildTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// kilnVersion is the one line of `kiln --version`.
func kilnVersion() string {
	v := buildVersion()
	s := v.Version
	if v.GitCommit != "" {
		c := v.GitCommit
		if len(c) > 12 {
			c = c[:12]
		}
		if v.Modified {
			c += "-dirty"
		}
		s += ", build " + c
	}
	return s
}

func newVersionCommand(g *globals) *cobra.Command {
	var f string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the kiln version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := versionOutput{Client: buildVersion()}
			if f != "" {
				return format.Object(cmd.OutOrStdout(), f, v)
			}
			c := v.Client
			commit := c.GitCommit
			if commit == "" {
				commit = "unknown"
			} else if c.Modified {
				commit += " (modified)"
			}
			built := c.BuildTime
			if built == "" {
				built = "unknown"
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 1, ' ', 0)
			fmt.Fprintln(tw, "Client:")
			fmt.Fprintf(tw, " Version:\t%s\n", c.Version)
			fmt.Fprintf(tw, " Go version:\t%s\n", c.GoVersion)
			fmt.Fprintf(tw, " Git commit:\t%s\n", commit)
			fmt.Fprintf(tw, " Built:\t%s\n", built)
			fmt.Fprintf(tw, " OS/Arch:\t%s/%s\n", c.Os, c.Arch)
			fmt.Fprintf(tw, " Store schema:\t%d\n", c.StoreSchema)
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&f, "format", "f", "", "format the output using the given Go template, or json")
	return cmd
}
