package format

import (
	"bytes"
	"strings"
	"testing"
)

type row struct {
	ID, Name, Labels string

	labels map[string]string
}

func (r row) Label(k string) string { return r.labels[k] }

var spec = Spec{
	Table:   "table {{.ID}}\t{{.Name}}",
	Quiet:   "{{.ID}}",
	Headers: map[string]string{"ID": "CONTAINER ID", "Name": "NAMES", "Labels": "LABELS"},
}

var rows = []row{
	{ID: "0123456789ab", Name: "web", Labels: "a=1,b=2", labels: map[string]string{"a": "1", "b": "2"}},
	{ID: "ba9876543210", Name: "db<1>"},
}

// Expected outputs are what docker's formatter prints for the same rows
// (tabwriter minwidth 10, padding 3; headers from the template; json with
// sorted keys and no HTML escaping).
func TestWrite(t *testing.T) {
	cases := []struct {
		format string
		quiet  bool
		want   string
	}{
		{"", false, "CONTAINER ID   NAMES\n0123456789ab   web\nba9876543210   db<1>\n"},
		{"table", false, "CONTAINER ID   NAMES\n0123456789ab   web\nba9876543210   db<1>\n"},
		{"", true, "0123456789ab\nba9876543210\n"},
		{"table", true, "0123456789ab\nba9876543210\n"},
		{"{{.Name}}", true, "web\ndb<1>\n"}, // a custom format wins over -q, as docker's
		{"table {{.Name}}\t{{.Labels}}", false, "NAMES     LABELS\nweb       a=1,b=2\ndb<1>     \n"},
		{`{{.ID}}\t{{.Name}}`, false, "0123456789ab\tweb\nba9876543210\tdb<1>\n"},
		{`{{.Name}}\n`, false, "web\n\ndb<1>\n\n"},
		{"json", false, `{"ID":"0123456789ab","Labels":"a=1,b=2","Name":"web"}` + "\n" + `{"ID":"ba9876543210","Labels":"","Name":"db<1>"}` + "\n"},
		{"{{json .Name}}", false, "\"web\"\n\"db<1>\"\n"},
		{`{{.Label "a"}}|{{upper .Name}}|{{truncate .ID 4}}|{{pad .Name 1 1}}|{{join (split .Labels ",") ";"}}`, false, "1|WEB|0123| web |a=1;b=2\n|DB<1>|ba98| db<1> |\n"},
		{"table {{.Name | upper}}\t{{json .ID}}", false, "NAMES     CONTAINER ID\nWEB       \"0123456789ab\"\nDB<1>     \"ba9876543210\"\n"},
		{"{{lower .Name}}{{println}}", false, "web\n\ndb<1>\n\n"},
	}
	for _, c := range cases {
		var b bytes.Buffer
		if err := Write(&b, spec, Options{Format: c.format, Quiet: c.quiet}, rows); err != nil {
			t.Errorf("%q: %v", c.format, err)
			continue
		}
		if b.String() != c.want {
			t.Errorf("%q:\ngot  %q\nwant %q", c.format, b.String(), c.want)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	for _, c := range []struct {
		format string
		rows   []row
		want   string
	}{
		{"{{.Nope}}", rows, "can't evaluate field Nope"},
		{"table {{.ID}}\t{{.Nope}}", rows, "can't evaluate field Nope"},
		{"{{.Nope}}", nil, "can't evaluate field Nope"}, // no rows: still an error
		{"{{.ID", rows, "template parsing error"},
		{"{{nofunc .ID}}", rows, "template parsing error"},
	} {
		var b bytes.Buffer
		err := Write(&b, spec, Options{Format: c.format}, c.rows)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.format, err, c.want)
		}
		if b.Len() != 0 {
			t.Errorf("%q: wrote %q before failing", c.format, b.String())
		}
	}
	// No rows: a table still has its header, other formats print nothing.
	var b bytes.Buffer
	if err := Write(&b, spec, Options{}, []row(nil)); err != nil || b.String() != "CONTAINER ID   NAMES\n" {
		t.Errorf("empty table: %q, %v", b.String(), err)
	}
}

func TestInspect(t *testing.T) {
	objs := []any{map[string]any{"Id": "x", "Size": 16777216, "State": map[string]any{"Running": true}}}
	var def, js bytes.Buffer
	if err := Inspect(&def, "", objs); err != nil {
		t.Fatal(err)
	}
	if err := Inspect(&js, "json", objs); err != nil {
		t.Fatal(err)
	}
	want := "[\n    {\n        \"Id\": \"x\",\n        \"Size\": 16777216,\n        \"State\": {\n            \"Running\": true\n        }\n    }\n]\n"
	if def.String() != want || js.String() != want {
		t.Errorf("default %q, json %q, want %q", def.String(), js.String(), want)
	}
	var b bytes.Buffer
	if err := Inspect(&b, "{{.Size}} {{.State.Running}} {{json .State}}", objs); err != nil || b.String() != "16777216 true {\"Running\":true}\n" {
		t.Errorf("template: %q, %v", b.String(), err)
	}
	b.Reset()
	err := Inspect(&b, "{{.State.Nope}}", objs)
	if err == nil || !strings.Contains(err.Error(), `map has no entry for key "Nope"`) || b.Len() != 0 {
		t.Errorf("missing key: %q, %v", b.String(), err)
	}
	// A field the JSON leaves out when empty is still the type's: docker
	// prints it from the typed object.
	type sized struct {
		ID     string `json:"Id"`
		SizeRw *int64 `json:",omitempty"`
	}
	b.Reset()
	if err := Inspect(&b, "{{.Id}} {{.SizeRw}}", []any{sized{ID: "x"}}); err == nil {
		t.Errorf("{{.Id}} {{.SizeRw}}: no error (Id is JSON's, SizeRw the type's)")
	}
	b.Reset()
	if err := Inspect(&b, "{{.SizeRw}}", []any{sized{ID: "x"}}); err != nil || b.String() != "<nil>\n" {
		t.Errorf("omitted field: %q, %v", b.String(), err)
	}
	b.Reset()
	if err := Inspect(&b, "", nil); err != nil || b.String() != "[]\n" {
		t.Errorf("nothing found: %q, %v", b.String(), err)
	}
	b.Reset()
	if err := Object(&b, "json", struct{ A int }{1}); err != nil || b.String() != "{\"A\":1}\n" {
		t.Errorf("object json: %q, %v", b.String(), err)
	}
}
