// Command kiln builds Dockerfiles into OCI images and runs them, without a daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/rootless"
	_ "github.com/kiln-build/kiln/internal/warmstart" // fewer page faults at start: see its doc
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
	if cache.IsDeleter() {
		cache.Delete()
	}
	if rootless.IsPause() {
		rootless.Pause()
	}
	// An ordinary user's kiln continues as root of the user's kiln user
	// namespace: joined before Go started when the user's pause process
	// lives, else through a re-execution (nothing happens under real root).
	rootless.Enter()
	// What a large COPY or pull holds live (its per-file records, hash and
	// pipe buffers: some 45 MB for 100,000 files) is collected before the
	// heap doubles past it (GOGC's 100%) into 110 MB of memory; GOMEMLIMIT
	// sets another limit. It is a soft limit: the collector gives up
	// trying to keep under it rather than spend more than half the CPU.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommandFor(os.Args[1:]).ExecuteContext(ctx)
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

// memoryLimit is the Go runtime's soft memory limit for kiln's commands.
const memoryLimit = 72 << 20

// exitError makes kiln exit with a status without printing anything more.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// globals are the flags every command shares.
type globals struct {
	root string
}

// newRootCommand is kiln's whole command tree.
func newRootCommand() *cobra.Command { return newRootCommandFor(nil) }

// newRootCommandFor is the command tree as args need it: when they name a
// top-level or management command, only that command is made (every process
// start would otherwise build some hundred commands and their flags to run
// one); anything else (help, completion, a flag or a name it does not know)
// gets the whole tree, so cobra's help and suggestions see every command.
func newRootCommandFor(args []string) *cobra.Command {
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
	if build := commandMaker(commandName(args)); build != nil {
		root.AddCommand(build(g))
		return root
	}
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

// commandName is the command args start with, after the root's own flag
// (--root DIR); "" when they start with another flag or name none.
func commandName(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--root":
			i++
		case strings.HasPrefix(a, "--root="):
		case strings.HasPrefix(a, "-"):
			return ""
		default:
			return a
		}
	}
	return ""
}

// commandMaker is what makes the top-level or management command named
// name; nil when kiln has none of that name.
func commandMaker(name string) func(*globals) *cobra.Command {
	if build := lookupCommand(topCommands, name); build != nil {
		return build
	}
	return lookupCommand(managementGroups, name)
}

// lookupCommand is what makes the command of cs named name, if any.
func lookupCommand(cs []namedCommand, name string) func(*globals) *cobra.Command {
	for _, c := range cs {
		if c.name == name {
			return c.build
		}
	}
	return nil
}

// topCommands are kiln's top-level commands, by name.
var topCommands = []namedCommand{
	{"build", newBuildCommand},
	{"import", newImportCommand},
	{"save", newSaveCommand},
	{"load", newLoadCommand},
	{"images", newImagesCommand},
	{"history", newHistoryCommand},
	{"layers", newLayersCommand},
	{"dive", newDiveCommand},
	{"inspect", newInspectCommand},
	{"tag", newTagCommand},
	{"rmi", newRmiCommand},
	{"info", newInfoCommand},
	{"pull", newPullCommand},
	{"push", newPushCommand},
	{"login", newLoginCommand},
	{"logout", newLogoutCommand},
	{"run", newRunCommand},
	{"create", newCreateCommand},
	{"start", newStartCommand},
	{"stop", newStopCommand},
	{"restart", newRestartCommand},
	{"kill", newKillCommand},
	{"rm", newRmCommand},
	{"wait", newWaitCommand},
	{"ps", newPsCommand},
	{"logs", newLogsCommand},
	{"volume", newVolumeCommand},
	{"network", newNetworkCommand},
	{"port", newPortCommand},
	{"exec", newExecCommand},
	{"attach", newAttachCommand},
	{"top", newTopCommand},
	{"diff", newDiffCommand},
	{"cp", newCpCommand},
	{"export", newExportCommand},
	{"commit", newCommitCommand},
	{"pause", newPauseCommand},
	{"unpause", newUnpauseCommand},
	{"rename", newRenameCommand},
	{"update", newUpdateCommand},
	{"stats", newStatsCommand},
	{"events", newEventsCommand},
	{"version", newVersionCommand},
}

// namedCommand makes the command of that name.
type namedCommand struct {
	name  string
	build func(*globals) *cobra.Command
}

// commands are kiln's top-level commands.
func commands(g *globals) []*cobra.Command {
	out := make([]*cobra.Command, len(topCommands))
	for i, c := range topCommands {
		out[i] = c.build(g)
	}
	return out
}
