package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// A verb of a management command: the top-level command it is (built again,
// so both run the same code), under the name docker gives it there.
type verb struct {
	name    string   // name in the group
	top     string   // top-level command; "" when the same as name
	aliases []string // further names in the group
}

// Docker's management commands, each as the verbs it groups. A verb whose
// top-level command does not exist (yet) is left out, so a new top-level
// container command (cp, stats, ...) joins `kiln container` by being
// registered at top level and named here.
var (
	imageVerbs = []verb{
		{name: "build"}, {name: "history"}, {name: "import"}, {name: "load"},
		{name: "ls", top: "images", aliases: []string{"list"}}, {name: "pull"}, {name: "push"},
		{name: "rm", top: "rmi", aliases: []string{"remove"}}, {name: "save"}, {name: "tag"},
	}
	containerVerbs = []verb{
		{name: "attach"}, {name: "commit"}, {name: "cp"}, {name: "create"}, {name: "diff"}, {name: "exec"},
		{name: "export"}, {name: "kill"}, {name: "logs"}, {name: "ls", top: "ps", aliases: []string{"list", "ps"}},
		{name: "pause"}, {name: "port"}, {name: "rename"}, {name: "restart"}, {name: "rm", aliases: []string{"remove"}},
		{name: "run"}, {name: "start"}, {name: "stats"}, {name: "stop"}, {name: "top"}, {name: "unpause"},
		{name: "update"}, {name: "wait"},
	}
	builderVerbs = []verb{{name: "build"}}
	systemVerbs  = []verb{{name: "events"}, {name: "info"}}
)

// managementGroups are `kiln image|container|builder|system ...`, by name.
var managementGroups = []namedCommand{
	{"image", func(g *globals) *cobra.Command {
		return group("image", "Manage images", append(verbs(g, imageVerbs),
			newInspectCommandOf(g, "image"), newImagePruneCommand(g))...)
	}},
	{"container", func(g *globals) *cobra.Command {
		return group("container", "Manage containers", append(verbs(g, containerVerbs),
			newInspectCommandOf(g, "container"), newContainerPruneCommand(g))...)
	}},
	{"builder", func(g *globals) *cobra.Command {
		return group("builder", "Manage builds", append(verbs(g, builderVerbs),
			newBuilderPruneCommand(g), newBuilderDuCommand(g))...)
	}},
	{"system", func(g *globals) *cobra.Command {
		return group("system", "Manage kiln", append(verbs(g, systemVerbs),
			newSystemDfCommand(g), newSystemPruneCommand(g), newSystemCheckCommand(g))...)
	}},
}

// managementCommands are docker's management commands.
func managementCommands(g *globals) []*cobra.Command {
	out := make([]*cobra.Command, len(managementGroups))
	for i, c := range managementGroups {
		out[i] = c.build(g)
	}
	return out
}

// verbs builds the top-level commands again and returns those vs name,
// renamed as the group calls them.
func verbs(g *globals, vs []verb) []*cobra.Command {
	var out []*cobra.Command
	for _, v := range vs {
		top := v.top
		if top == "" {
			top = v.name
		}
		build := lookupCommand(topCommands, top)
		if build == nil {
			continue
		}
		c := build(g)
		if _, rest, ok := strings.Cut(c.Use, " "); ok {
			c.Use = v.name + " " + rest
		} else {
			c.Use = v.name
		}
		c.Aliases = v.aliases
		out = append(out, c)
	}
	return out
}

// group is a management command. Given no subcommand or one it does not
// have, it fails (exit 1) with a usage line, as a script needs, rather than
// printing its help and succeeding.
func group(name, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: name, Short: short}
	cmd.AddCommand(subs...)
	requireSubcommand(cmd)
	return cmd
}

// requireSubcommand makes a parent command fail when run alone or with a
// subcommand it does not have.
func requireSubcommand(cmd *cobra.Command) {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		usage := fmt.Sprintf("Usage:  %s COMMAND\nRun '%s --help' for more information", cmd.CommandPath(), cmd.CommandPath())
		if len(args) == 0 {
			return fmt.Errorf("%q requires a subcommand\n%s", cmd.CommandPath(), usage)
		}
		return fmt.Errorf("unknown command: %s %s\n%s", cmd.CommandPath(), args[0], usage)
	}
}
