package main

import (
	"encoding/json"
	"errors"
	"fmt"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/imageview"
)

const layersHelp = `Show what each layer of an image holds and what it wastes, from the
store's snapshots (nothing is extracted).

One row per history entry: its index, size, entries added / changed /
removed, wasted bytes and instruction; then the image's total size,
efficiency, wasted bytes and the 10 biggest wasted files.

Definitions (dive's):
  size        content bytes: the apparent size of every entry but directories,
              a hard-linked inode once, as kiln history and kiln images count
  wasted      bytes of a file's copies that a later layer replaces or deletes;
              each earlier copy counts once (the surviving copy does not)
              (a row's WASTED: its own bytes that later layers replace or delete)
  changes     A added, C changed (replaced, or a directory's mode/owner changed),
              D deleted; a directory copied up unchanged is no change
  efficiency  1 - wasted/total, total being the sum of the layers' sizes
  user wasted wasted / the size of every layer but the first (the base)

--ci checks dive's rules and exits 1 with one line per broken rule. The
thresholds come from the flags, else from the file --ci-config (default
.dive-ci, dive's YAML: rules: {lowestEfficiency, highestWastedBytes,
highestUserWastedPercent}), else dive's defaults; "disabled" turns a rule off.

--format json prints the same view as one JSON object: the analysis (image,
layers, size, userSize, wastedBytes, efficiency, userWastedPercent, wasted);
with --layer the layer with its files (path, change, type, size, mode, uid,
gid, link, wasted); with --tree the tree (name, path, change, type, size,
children); with --compare the comparison (imageA, imageB, sizeA, sizeB,
wastedA, wastedB, appeared, disappeared, grew, shrank, files: path, change,
sizeA, sizeB, delta); with --ci {passed, rules: rule, threshold, value,
status, message}.`

// layersFlags are the options of `kiln layers`.
type layersFlags struct {
	format  string
	layer   int
	tree    bool
	depth   int
	diff    bool
	compare bool
	noTrunc bool
	html    string
	tui     bool
	ci      ciFlags
	// platform picks the image of a multi-platform image (default: the host's).
	platform string
}

// target is --platform parsed: nil for the host's.
func (o layersFlags) target() (*ocispec.Platform, error) {
	if o.platform == "" {
		return nil, nil
	}
	p, err := cache.ParsePlatform(o.platform)
	if err != nil {
		return nil, fmt.Errorf("--platform: %w", err)
	}
	return &p, nil
}

func newLayersCommand(g *globals) *cobra.Command {
	var o layersFlags
	cmd := &cobra.Command{
		Use:   "layers [OPTIONS] IMAGE | --compare IMAGE_A IMAGE_B",
		Short: "Show what each layer of an image holds and wastes",
		Long:  layersHelp,
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(cmd, args); err != nil {
				return err
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			out := cmd.OutOrStdout()
			if o.compare {
				return layersCompare(out, s, args[0], args[1], o)
			}
			p, err := o.target()
			if err != nil {
				return err
			}
			a, err := imageview.AnalyzeImage(s, args[0], p)
			if err != nil {
				return err
			}
			switch {
			case o.ci.enabled:
				return o.ci.gate(cmd, out, a, o.format == "json")
			case o.html != "":
				return writeLayersHTML(o.html, args[0], a)
			case o.tui:
				return runLayersTUI(args[0], a)
			case o.layer >= 0:
				return layersOne(out, a, o)
			}
			return layersTable(out, a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.format, "format", "table", "output format: table or json")
	f.IntVar(&o.layer, "layer", -1, "list the changes of the layer with this index")
	f.BoolVar(&o.tree, "tree", false, "with --layer: show the changes as a tree, directory sizes summed")
	f.IntVar(&o.depth, "depth", 0, "with --tree: show this many directory levels (0: all)")
	f.BoolVar(&o.diff, "diff", false, "with --layer: only what changes content against the layers below (not metadata)")
	f.BoolVar(&o.compare, "compare", false, "compare the files of two images: what grew, appeared or disappeared")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&o.html, "html", "", "write a self-contained HTML report to this file")
	f.BoolVarP(&o.tui, "interactive", "i", false, "browse the layers and their files in a terminal UI")
	f.StringVar(&o.platform, "platform", "", "the platform's image of a multi-platform image (default: this machine's)")
	o.ci.add(f, "ci")
	return cmd
}

// check refuses flag combinations that mean nothing.
func (o *layersFlags) check(cmd *cobra.Command, args []string) error {
	if o.format != "table" && o.format != "json" {
		return fmt.Errorf("--format %q: expected table or json", o.format)
	}
	if o.compare != (len(args) == 2) {
		if o.compare {
			return errors.New("--compare needs two images: kiln layers --compare IMAGE_A IMAGE_B")
		}
		return fmt.Errorf("one image expected, got %d (to compare two: --compare)", len(args))
	}
	if o.layer < 0 && (o.tree || o.diff) {
		return errors.New("--tree and --diff need --layer N")
	}
	if cmd.Flags().Changed("depth") && !o.tree {
		return errors.New("--depth needs --tree")
	}
	if o.depth < 0 {
		return errors.New("--depth must be 0 (all levels) or more")
	}
	views := 0
	for _, on := range []bool{o.compare, o.ci.enabled, o.html != "", o.tui, o.layer >= 0} {
		if on {
			views++
		}
	}
	if views > 1 {
		return errors.New("choose one of --layer, --compare, --ci, --html and -i")
	}
	if o.format == "json" && (o.html != "" || o.tui) {
		return errors.New("--format json does not apply to --html or -i")
	}
	if !o.ci.enabled && o.ci.anyThreshold(cmd) {
		return errors.New("--lowest-efficiency, --highest-wasted-bytes, --highest-user-wasted-percent and --ci-config need --ci")
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// createdBy shortens an instruction as `kiln history` does.
func createdBy(s string, noTrunc bool) string {
	by := strings.Join(strings.Fields(s), " ")
	if !noTrunc && len([]rune(by)) > 45 {
		by = string([]rune(by)[:44]) + "…"
	}
	return by
}

func layersTable(w io.Writer, a *imageview.Analysis, o layersFlags) error {
	if o.format == "json" {
		view := *a
		view.Layers = make([]imageview.Layer, len(a.Layers))
		for i, l := range a.Layers {
			l.Files = nil
			view.Layers[i] = l
		}
		return printJSON(w, view)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tSIZE\tADDED\tCHANGED\tREMOVED\tWASTED\tCREATED BY")
	for _, l := range a.Layers {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%s\t%s\n", l.Index, humanSize(l.Size), l.Added, l.Changed, l.Removed,
			humanSize(l.WastedBytes), createdBy(l.CreatedBy, o.noTrunc))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nImage:               %s\n", shortID(a.Image, o.noTrunc))
	fmt.Fprintf(w, "Total size:          %s\n", humanSize(a.Size))
	fmt.Fprintf(w, "Efficiency:          %.2f %%\n", 100*a.Efficiency)
	fmt.Fprintf(w, "Wasted:              %s (%.2f %% of the user layers' %s)\n", humanSize(a.WastedBytes), 100*a.UserWastedPercent, humanSize(a.UserSize))
	if len(a.Wasted) == 0 {
		fmt.Fprintln(w, "\nNo wasted files.")
		return nil
	}
	fmt.Fprintln(w, "\nBiggest wasted files:")
	tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "WASTED\tLAYERS\tPATH")
	for i, f := range a.Wasted {
		if i == 10 {
			break
		}
		ls := make([]string, len(f.Layers))
		for j, l := range f.Layers {
			ls[j] = strconv.Itoa(l)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", humanSize(f.Bytes), strings.Join(ls, ","), f.Path)
	}
	return tw.Flush()
}

func layersOne(w io.Writer, a *imageview.Analysis, o layersFlags) error {
	if o.layer >= len(a.Layers) {
		return fmt.Errorf("image %s has %d history entries (0-%d): no layer %d", shortID(a.Image, false), len(a.Layers), len(a.Layers)-1, o.layer)
	}
	l := a.Layers[o.layer]
	if o.diff {
		var err error
		if l.Files, err = a.ContentChanges(o.layer); err != nil {
			return err
		}
	}
	if o.tree {
		t := imageview.TreeOf(l.Files, o.depth)
		if o.format == "json" {
			return printJSON(w, t)
		}
		printTree(w, t, "", true)
		return nil
	}
	if o.format == "json" {
		// files always present, [] for a layer without changes
		files := l.Files
		if files == nil {
			files = []imageview.File{}
		}
		return printJSON(w, struct {
			imageview.Layer
			Files []imageview.File `json:"files"`
		}{l, files})
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tSIZE\tMODE\tOWNER\tPATH")
	for _, f := range imageview.BySize(l.Files) {
		p := f.Path
		if f.Link != "" && f.Type == "symlink" {
			p += " -> " + f.Link
		} else if f.Type == "hardlink" {
			p += " link to " + f.Link
		}
		owner := fmt.Sprintf("%d:%d", f.UID, f.GID)
		if f.Change == "D" {
			owner = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Change, humanSize(f.Size), f.Mode, owner, p)
	}
	return tw.Flush()
}

// printTree prints t as tree(1) does, each entry with its size (and its
// change, for a layer's tree).
func printTree(w io.Writer, t *imageview.Tree, prefix string, root bool) {
	label := t.Name
	if t.Type == "dir" && !root {
		label += "/"
	}
	change := t.Change
	if change == "" {
		change = " "
	}
	fmt.Fprintf(w, "%s %9s  %s%s\n", change, humanSize(t.Size), prefix, label)
	for i, c := range t.Children {
		p := strings.NewReplacer("├── ", "│   ", "└── ", "    ").Replace(prefix)
		if i == len(t.Children)-1 {
			p += "└── "
		} else {
			p += "├── "
		}
		printTree(w, c, p, false)
	}
}

func layersCompare(w io.Writer, s *cache.Store, nameA, nameB string, o layersFlags) error {
	p, err := o.target()
	if err != nil {
		return err
	}
	a, err := imageview.AnalyzeImage(s, nameA, p)
	if err != nil {
		return err
	}
	b, err := imageview.AnalyzeImage(s, nameB, p)
	if err != nil {
		return err
	}
	c, err := imageview.Compare(a, b)
	if err != nil {
		return err
	}
	if o.format == "json" {
		if c.Files == nil {
			c.Files = []imageview.FileDiff{}
		}
		return printJSON(w, c)
	}
	fmt.Fprintf(w, "%s: %s (wasted %s)\n", nameA, humanSize(c.SizeA), humanSize(c.WastedA))
	fmt.Fprintf(w, "%s: %s (wasted %s)\n", nameB, humanSize(c.SizeB), humanSize(c.WastedB))
	fmt.Fprintf(w, "Difference: %s; files appeared %s, disappeared %s, grew %s, shrank %s\n\n",
		signedSize(c.SizeB-c.SizeA), humanSize(c.Appeared), humanSize(c.Disappeared), humanSize(c.Grew), humanSize(c.Shrank))
	if len(c.Files) == 0 {
		fmt.Fprintln(w, "The images have the same files.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANGE\tDELTA\tSIZE A\tSIZE B\tPATH")
	for _, f := range c.Files {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Change, signedSize(f.Delta), humanSize(f.SizeA), humanSize(f.SizeB), f.Path)
	}
	return tw.Flush()
}

func signedSize(n int64) string {
	if n < 0 {
		return "-" + humanSize(-n)
	}
	return "+" + humanSize(n)
}
