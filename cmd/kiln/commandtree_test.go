package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCommandTables: each entry of the tables a process start looks its
// command up in makes the command of that name, and every command of the
// whole tree is in them.
func TestCommandTables(t *testing.T) {
	g := &globals{}
	for _, tc := range [][]namedCommand{topCommands, managementGroups} {
		for _, c := range tc {
			if got := c.build(g).Name(); got != c.name {
				t.Errorf("table entry %q makes command %q", c.name, got)
			}
		}
	}
	for _, c := range newRootCommand().Commands() {
		switch c.Name() {
		case "help", "completion": // cobra's own
			continue
		}
		if commandMaker(c.Name()) == nil {
			t.Errorf("command %q is not in the tables", c.Name())
		}
	}
}

// TestCommandTreeForArgs: the tree made for a command line has just the
// command it names, which resolves the rest of the line as the whole tree
// does; help, completion, flags first and unknown names get the whole tree.
func TestCommandTreeForArgs(t *testing.T) {
	full := newRootCommand()
	names := func(c *cobra.Command) []string {
		var out []string
		for _, s := range c.Commands() {
			out = append(out, s.Name())
		}
		return out
	}
	for _, line := range []string{
		"run --rm bb true", "--root /x build -q -t a .", "--root=/x images", "container ls -a", "image rm a",
		"system df", "builder prune -f", "network create n", "volume ls", "version",
	} {
		args := strings.Fields(line)
		root := newRootCommandFor(args)
		if n := names(root); len(n) != 1 {
			t.Errorf("%q: tree has %v, want one command", line, n)
		}
		got, gotRest, err := root.Find(args)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		want, wantRest, err := full.Find(args)
		if err != nil {
			t.Fatalf("%q in the whole tree: %v", line, err)
		}
		if got.CommandPath() != want.CommandPath() || !slices.Equal(gotRest, wantRest) {
			t.Errorf("%q: finds %q %v, the whole tree %q %v", line, got.CommandPath(), gotRest, want.CommandPath(), wantRest)
		}
		if got.Flags().FlagUsages() != want.Flags().FlagUsages() {
			t.Errorf("%q: flags differ from the whole tree's", line)
		}
	}
	for _, line := range []string{"", "help run", "completion bash", "__complete ru", "--version", "-h", "--root", "nosuch", "--debug run"} {
		if n, all := len(names(newRootCommandFor(strings.Fields(line)))), len(names(full)); n != all {
			t.Errorf("%q: tree has %d commands, want the whole tree's %d", line, n, all)
		}
	}
}
