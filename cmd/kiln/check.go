package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

func newSystemCheckCommand(g *globals) *cobra.Command {
	var opts cache.CheckOptions
	var format string
	cmd := &cobra.Command{
		Use:   "check [--quick] [--repair [--force]] [--format json]",
		Short: "Check the store for damage and debris, and optionally repair it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "" && format != "json" {
				return fmt.Errorf("--format %q: only json is supported", format)
			}
			if opts.Force && !opts.Repair {
				return fmt.Errorf("--force only applies with --repair")
			}
			// Debris stays for the check to report (and --repair to remove).
			s, err := cache.OpenWith(g.root, cache.OpenOptions{KeepDebris: true})
			if err != nil {
				return err
			}
			defer s.Close()
			opts.Waiting = func() {
				fmt.Fprintln(cmd.ErrOrStderr(), "waiting for running kiln commands to finish...")
			}
			rep, err := s.Check(cmd.Context(), opts)
			if err != nil {
				return fmt.Errorf("check %s: %w", s.Root(), err)
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				for _, p := range rep.Problems {
					fmt.Fprintln(out, p)
				}
				for _, r := range rep.Removed {
					fmt.Fprintln(out, "removed:", r)
				}
				if rep.DebrisSkipped {
					fmt.Fprintln(out, "temp files not judged: other kiln commands have the store open")
				}
				repaired := 0
				for _, p := range rep.Problems {
					if p.Repaired {
						repaired++
					}
				}
				fmt.Fprintf(out, "checked %d blobs, %d layers, %d images, %d references, %d cache records: %d problems, %d repaired\n",
					rep.Blobs, rep.Layers, rep.Images, rep.References, rep.CacheRecords, len(rep.Problems), repaired)
			}
			if !rep.Clean() {
				return exitError(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Quick, "quick", false, "skip re-hashing layer snapshots")
	f.BoolVar(&opts.Repair, "repair", false, "remove what is damaged or half-made, and the images that depend on it")
	f.BoolVar(&opts.Force, "force", false, "with --repair, also remove images that containers use")
	f.StringVar(&format, "format", "", "output format: json")
	return cmd
}
