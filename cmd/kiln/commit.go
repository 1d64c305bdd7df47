package main

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

func newCommitCommand(g *globals) *cobra.Command {
	var changes []string
	var message, author string
	var pause bool
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := builder.ParseChanges(changes); err != nil {
				return err
			}
			c, err := container.NewStore(storeRoot(g)).Get(args[0])
			if err != nil {
				return err
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			var id digest.Digest
			err = c.WhilePaused(pause, func() error {
				id, err = builder.Commit(cmd.Context(), s, builder.CommitOptions{
					Parent: c.Image, Upper: c.UpperDir(), Config: c.ImageConfig(), Changes: changes,
					Comment: message, Author: author, CreatedBy: strings.Join(append([]string{c.Path}, c.Args...), " "),
				})
				return err
			})
			if err != nil {
				return err
			}
			if len(args) == 2 {
				if err := s.Tag(args[1], id); err != nil {
					return err
				}
			}
			c.LogCommit(id.String())
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	f.StringVarP(&message, "message", "m", "", "commit message")
	f.StringVarP(&author, "author", "a", "", `author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.BoolVarP(&pause, "pause", "p", true, "pause container during commit")
	return cmd
}
