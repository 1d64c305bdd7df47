// Package tui is the interactive view of `kiln layers -i` and `kiln dive`:
// the layer list on the left, the selected layer's file tree on the right
// (directories collapse, changes filter by kind), the wasted-space summary
// below. It is built on tview (widgets: list, tree view, text; tcell
// underneath), which gives the collapsing tree and the focus handling
// ready-made.
package tui

import (
	"fmt"
	"strings"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/kiln-build/kiln/imageview"
)

// view is the state of the screen.
type view struct {
	a      *imageview.Analysis
	size   func(int64) string
	app    *tview.Application
	layers *tview.List
	tree   *tview.TreeView
	status *tview.TextView
	layer  int
	show   map[string]bool // change kinds shown: A, C, D
	diff   bool            // only content changes
}

// Run shows the analysis until the user quits (q or Esc). size formats
// byte counts.
func Run(title string, a *imageview.Analysis, size func(int64) string) error {
	v := &view{a: a, size: size, app: tview.NewApplication(), show: map[string]bool{"A": true, "C": true, "D": true}}
	v.layers = tview.NewList().ShowSecondaryText(false).SetHighlightFullLine(true)
	v.layers.SetBorder(true).SetTitle(" Layers ")
	for _, l := range a.Layers {
		by := strings.Join(strings.Fields(l.CreatedBy), " ")
		v.layers.AddItem(fmt.Sprintf("%2d %8s  %s", l.Index, size(l.Size), tview.Escape(by)), "", 0, nil)
	}
	v.layers.SetChangedFunc(func(i int, _, _ string, _ rune) {
		v.layer = i
		v.fillTree()
	})
	v.tree = tview.NewTreeView()
	v.tree.SetBorder(true)
	v.tree.SetSelectedFunc(func(n *tview.TreeNode) { n.SetExpanded(!n.IsExpanded()) })
	summary := tview.NewTextView().SetDynamicColors(true)
	summary.SetBorder(true).SetTitle(" Image ")
	fmt.Fprintf(summary, "%s  total %s  efficiency %.2f %%  wasted %s (user %.2f %%)\n", tview.Escape(title),
		size(a.Size), 100*a.Efficiency, size(a.WastedBytes), 100*a.UserWastedPercent)
	for i, w := range a.Wasted {
		if i == 3 {
			break
		}
		fmt.Fprintf(summary, "wasted %8s  %s\n", size(w.Bytes), tview.Escape(w.Path))
	}
	v.status = tview.NewTextView().SetDynamicColors(true)
	left := tview.NewFlex().SetDirection(tview.FlexRow).AddItem(v.layers, 0, 3, true).AddItem(summary, 6, 0, false)
	body := tview.NewFlex().AddItem(left, 0, 1, true).AddItem(v.tree, 0, 1, false)
	root := tview.NewFlex().SetDirection(tview.FlexRow).AddItem(body, 0, 1, true).AddItem(v.status, 1, 0, false)
	v.app.SetInputCapture(func(ev *tcell.EventKey) *tcell.EventKey {
		switch {
		case ev.Key() == tcell.KeyTab:
			if v.layers.HasFocus() {
				v.app.SetFocus(v.tree)
			} else {
				v.app.SetFocus(v.layers)
			}
			v.fillStatus()
			return nil
		case ev.Key() == tcell.KeyEscape || ev.Rune() == 'q':
			v.app.Stop()
			return nil
		case ev.Rune() == 'a' || ev.Rune() == 'c' || ev.Rune() == 'd':
			k := strings.ToUpper(string(ev.Rune()))
			v.show[k] = !v.show[k]
			v.fillTree()
			return nil
		case ev.Rune() == 'x':
			v.diff = !v.diff
			v.fillTree()
			return nil
		}
		return ev
	})
	v.fillTree()
	return v.app.SetRoot(root, true).SetFocus(v.layers).Run()
}

// fillTree shows the selected layer's changes that the filters let
// through.
func (v *view) fillTree() {
	l := v.a.Layers[v.layer]
	files := l.Files
	if v.diff {
		if cc, err := v.a.ContentChanges(v.layer); err == nil {
			files = cc
		}
	}
	var shown []imageview.File
	for _, f := range files {
		if v.show[f.Change] {
			shown = append(shown, f)
		}
	}
	t := imageview.TreeOf(shown, 0)
	root := v.node(t, true)
	v.tree.SetRoot(root).SetCurrentNode(root)
	v.tree.SetTitle(fmt.Sprintf(" Layer %d: %d added, %d changed, %d removed, %s ", l.Index, l.Added, l.Changed, l.Removed, v.size(l.Size)))
	v.fillStatus()
}

func (v *view) node(t *imageview.Tree, top bool) *tview.TreeNode {
	name := t.Name
	if t.Type == "dir" && !top {
		name += "/"
	}
	change := t.Change
	if change == "" {
		change = " "
	}
	n := tview.NewTreeNode(fmt.Sprintf("%s %8s  %s", change, v.size(t.Size), tview.Escape(name))).SetReference(t)
	switch t.Change {
	case "A":
		n.SetColor(tcell.ColorGreen)
	case "C":
		n.SetColor(tcell.ColorYellow)
	case "D":
		n.SetColor(tcell.ColorRed)
	}
	for _, c := range t.Children {
		n.AddChild(v.node(c, false))
	}
	return n
}

func (v *view) fillStatus() {
	on := func(k, label string) string {
		if v.show[k] {
			return "[::r]" + label + "[::-]"
		}
		return label
	}
	diff := "x:all changes"
	if v.diff {
		diff = "[::r]x:content only[::-]"
	}
	v.status.SetText(fmt.Sprintf(" Tab:switch pane  ↑↓:move  Enter:collapse/expand  %s %s %s  %s  q:quit",
		on("A", "a:added"), on("C", "c:changed"), on("D", "d:removed"), diff))
}
