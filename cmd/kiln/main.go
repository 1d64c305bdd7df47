// Command kiln builds Dockerfiles into OCI images and runs them, without a daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/internal/rootless"
	"github.com/kiln-build/kiln/runner"
	"github.com/kiln-build/kiln/runner/container"
	"github.com/kiln-build/kiln/runner/network"
)

func main() {
	// The sandbox init is this same binary, re-executed: it must take over
	// before anything else runs.
	if runner.IsInit() {
		runner.Init()
	}
	if container.IsMonitor() {
		container.Monitor()
	}
	if network.IsReaper() {
		network.Reap()
	}
	if rootless.IsPause() {
		rootless.Pause()
	}
	// An ordinary user's kiln continues as root of the user's kiln user
	// namespace (a re-execution; nothing happens under real root).
	rootless.Enter()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		fmt.Fprintln(os.Stderr, "kiln:", err)
		os.Exit(1)
	}
}

// exitError makes kiln exit with a status without printing anything more.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// globals are the flags every command shares.
type globals struct {
	root string
}

func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "kiln",
		Short:         "Build Dockerfiles into OCI images and run them, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	defRoot := os.Getenv("KILN_ROOT")
	if defRoot == "" {
		defRoot = rootless.DefaultRoot()
	}
	root.PersistentFlags().StringVar(&g.root, "root", defRoot, "store root directory (env KILN_ROOT)")
	root.Version = kilnVersion()
	root.SetVersionTemplate("kiln version {{.Version}}\n")
	root.AddCommand(commands(g)...)
	// docker's management commands (image ls, container inspect, ...) are
	// the same commands, built again under their group (groups.go).
	root.AddCommand(managementCommands(g)...)
	// cobra's `completion bash|zsh|fish|powershell`, made now (not when
	// executed) so that it is a parent like the others.
	root.InitDefaultCompletionCmd()
	if c, _, err := root.Find([]string{"completion"}); err == nil && c != root {
		requireSubcommand(c)
	}
	return root
}

// commands are kiln's top-level commands.
func commands(g *globals) []*cobra.Command {
	return []*cobra.Command{
		newBuildCommand(g),
		newImportCommand(g),
		newSaveCommand(g),
		newLoadCommand(g),
		newImagesCommand(g),
		newHistoryCommand(g),
		newLayersCommand(g),
		newDiveCommand(g),
		newInspectCommand(g),
		newTagCommand(g),
		newRmiCommand(g),
		newInfoCommand(g),
		newPullCommand(g),
		newPushCommand(g),
		newLoginCommand(g),
		newLogoutCommand(g),
		newRunCommand(g),
		newCreateCommand(g),
		newStartCommand(g),
		newStopCommand(g),
		newRestartCommand(g),
		newKillCommand(g),
		newRmCommand(g),
		newWaitCommand(g),
		newPsCommand(g),
		newLogsCommand(g),
		newVolumeCommand(g),
		newNetworkCommand(g),
		newPortCommand(g),
		newExecCommand(g),
		newAttachCommand(g),
		newTopCommand(g),
		newDiffCommand(g),
		newCpCommand(g),
		newExportCommand(g),
		newCommitCommand(g),
		newPauseCommand(g),
		newUnpauseCommand(g),
		newRenameCommand(g),
		newUpdateCommand(g),
		newStatsCommand(g),
		newEventsCommand(g),
		newVersionCommand(g),
	}
}
