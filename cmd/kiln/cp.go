package main

import (
	"errors"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/runner/container"
)

func newCpCommand(g *globals) *cobra.Command {
	var o container.CopyOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  kiln cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs := container.NewStore(storeRoot(g))
			srcC, srcP := splitCpArg(args[0])
			dstC, dstP := splitCpArg(args[1])
			switch {
			case srcC != "" && dstC != "":
				return errors.New("copying between containers is not supported")
			case srcC == "" && dstC == "":
				return errors.New("must specify at least one container source")
			case srcC != "":
				c, err := cs.Get(srcC)
				if err != nil {
					return err
				}
				if dstP == "-" {
					_, err := c.CopyFrom(cmd.Context(), srcP, o, cmd.OutOrStdout())
					return err
				}
				info, err := c.StatPath(srcP, o)
				if err != nil {
					return err
				}
				return copyThroughPipe(info, func(w io.Writer) error {
					_, err := c.CopyFrom(cmd.Context(), srcP, o, w)
					return err
				}, func(r io.Reader, info container.CopyInfo) error {
					return container.ExtractHost(cmd.Context(), dstP, r, info, o)
				})
			default:
				c, err := cs.Get(dstC)
				if err != nil {
					return err
				}
				if srcP == "-" {
					return c.CopyTo(cmd.Context(), dstP, os.Stdin, container.CopyInfo{Stdin: true}, o)
				}
				info, err := container.StatHost(srcP, o)
				if err != nil {
					return err
				}
				return copyThroughPipe(info, func(w io.Writer) error {
					_, err := container.ArchiveHost(cmd.Context(), srcP, o, w)
					return err
				}, func(r io.Reader, info container.CopyInfo) error {
					return c.CopyTo(cmd.Context(), dstP, r, info, o)
				})
			}
		},
	}
	cmd.Flags().BoolVarP(&o.Archive, "archive", "a", false, "archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&o.Follow, "follow-link", "L", false, "always follow symbol link in SRC_PATH")
	return cmd
}

// splitCpArg splits "CONTAINER:PATH"; a path with a "/" before any ":"
// (or starting with ".") is local, as docker's.
func splitCpArg(arg string) (ctr, p string) {
	if strings.HasPrefix(arg, "/") || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	name, rest, ok := strings.Cut(arg, ":")
	if !ok || strings.Contains(name, "/") {
		return "", arg
	}
	return name, rest
}

// copyThroughPipe streams the tar that archive writes into extract.
func copyThroughPipe(info container.CopyInfo, archive func(io.Writer) error, extract func(io.Reader, container.CopyInfo) error) error {
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := archive(pw)
		pw.CloseWithError(err)
		errc <- err
	}()
	err := extract(pr, info)
	pr.CloseWithError(err)
	aerr := <-errc
	if err != nil {
		return err // the archive then failed writing to the closed pipe
	}
	return aerr
}
