package imageview

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"sync"
)

//go:embed report/report.html
var reportHTML string

//go:embed report/report.js
var reportJS string

//go:embed report/report.css
var reportCSS string

// reportTemplate is parsed when a report is first written, not at every
// kiln process's start.
var reportTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Parse(reportHTML))
})

// reportData is what the report's script renders: sizes come formatted
// (size: the caller's format, as the command line shows them).
type reportData struct {
	Title      string         `json:"title"`
	Image      string         `json:"image"`
	Size       string         `json:"size"`
	Efficiency string         `json:"efficiency"`
	Wasted     string         `json:"wasted"`
	UserWasted string         `json:"userWasted"`
	Layers     []reportLayer  `json:"layers"`
	WastedList []reportWasted `json:"wastedFiles"`
	Tree       *Tree          `json:"tree"`
}

type reportLayer struct {
	Index                   int    `json:"index"`
	Size                    string `json:"size"`
	Bytes                   int64  `json:"bytes"`
	Added, Changed, Removed int
	Wasted                  string `json:"wasted"`
	CreatedBy               string `json:"createdBy"`
	Empty                   bool   `json:"empty"`
}

type reportWasted struct {
	Path   string `json:"path"`
	Bytes  string `json:"bytes"`
	Layers []int  `json:"layers"`
}

// WriteHTML writes a self-contained HTML report of the analysis (no
// network fetches): the layer table, an icicle chart of the final tree
// coloured by the layer that wrote each file (click to zoom), and the
// wasted files. size formats byte counts.
func WriteHTML(w io.Writer, title string, a *Analysis, size func(int64) string) error {
	d := reportData{
		Title: title, Image: a.Image.String(), Size: size(a.Size),
		Efficiency: fmt.Sprintf("%.2f %%", 100*a.Efficiency),
		Wasted:     size(a.WastedBytes),
		UserWasted: fmt.Sprintf("%.2f %%", 100*a.UserWastedPercent),
		Tree:       a.FinalTree(0),
	}
	for _, l := range a.Layers {
		d.Layers = append(d.Layers, reportLayer{Index: l.Index, Size: size(l.Size), Bytes: l.Size, Added: l.Added, Changed: l.Changed,
			Removed: l.Removed, Wasted: size(l.WastedBytes), CreatedBy: strings.Join(strings.Fields(l.CreatedBy), " "), Empty: l.DiffID == ""})
	}
	for i, f := range a.Wasted {
		if i == 100 {
			break
		}
		d.WastedList = append(d.WastedList, reportWasted{Path: f.Path, Bytes: size(f.Bytes), Layers: f.Layers})
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return reportTemplate().Execute(w, map[string]any{
		"Title": title,
		"CSS":   template.CSS(reportCSS),
		"JS":    template.JS(reportJS),
		// JSON in a <script type="application/json">: < is escaped by
		// encoding/json, so no </script> can close it early.
		"Data": template.JS(data),
	})
}
