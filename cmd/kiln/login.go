package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/registry"
)

func newLoginCommand(g *globals) *cobra.Command {
	var (
		rf            registryFlags
		username      string
		password      string
		passwordStdin bool
	)
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (Docker Hub when no server is given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			if passwordStdin {
				if password != "" {
					return fmt.Errorf("--password and --password-stdin are mutually exclusive")
				}
				data, err := io.ReadAll(bufio.NewReader(io.LimitReader(os.Stdin, 1<<20)))
				if err != nil {
					return fmt.Errorf("read password from stdin: %w", err)
				}
				password = strings.TrimRight(string(data), "\r\n")
			} else if password != "" {
				fmt.Fprintln(os.Stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			if username == "" || password == "" {
				return fmt.Errorf("login needs --username and a password (--password-stdin)")
			}
			if _, err := registry.Login(cmd.Context(), server, username, password, rf.options(true)); err != nil {
				return err
			}
			fmt.Println("Login Succeeded")
			return nil
		},
	}
	f := cmd.Flags()
	rf.add(f, g)
	f.StringVarP(&username, "username", "u", "", "username")
	f.StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "take the password from stdin")
	return cmd
}

func newLogoutCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry (Docker Hub when no server is given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			key, had, err := registry.Logout(server, registry.Options{})
			if err != nil {
				return err
			}
			if had {
				fmt.Printf("Removing login credentials for %s\n", key)
			} else {
				fmt.Printf("Not logged in to %s\n", key)
			}
			return nil
		},
	}
}
