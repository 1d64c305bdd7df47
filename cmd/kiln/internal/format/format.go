// Package format renders kiln's listings and inspect output the way docker's
// --format does: "table" (the command's default columns), "table TEMPLATE"
// (with headers derived from the template), "json" (one JSON object per line,
// docker's field names), or any Go template with docker's functions (json,
// join, split, lower, upper, title, truncate, pad, and Go's println), where
// `\t` and `\n` are a tab and a newline. A field no row has is an error, not
// "<no value>".
//
// A command declares its rows as structs of exported fields named as docker's
// (methods such as Label(name) work in templates too) and a Spec with its
// default table and the header of each field.
package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/docker/cli/templates"
)

const (
	// TableKey starts a table format: "table" alone or "table TEMPLATE".
	TableKey = "table"
	// JSONKey prints each row as one JSON object.
	JSONKey = "json"
)

// Spec is what a listing declares.
type Spec struct {
	// Table is the default format, "table {{.ID}}\t...".
	Table string
	// Quiet is the format of -q ("{{.ID}}"), used when the format is the default table.
	Quiet string
	// Headers names the column of each field, as docker's headers.
	Headers map[string]string
}

// Options are a listing's output flags.
type Options struct {
	Format string // --format
	Quiet  bool   // -q: Spec.Quiet unless a custom format is given (as docker)
}

// Resolve turns the user's --format into the template to run: the default
// table, the quiet format, or the user's own.
func (s Spec) Resolve(o Options) string {
	switch strings.TrimSpace(o.Format) {
	case "", TableKey:
		if o.Quiet {
			return s.Quiet
		}
		return s.Table
	case JSONKey:
		return "{{json .}}"
	}
	return o.Format
}

// IsTable reports whether a resolved format is a table.
func IsTable(format string) bool { return strings.HasPrefix(format, TableKey) }

// Parse parses a list format (after Resolve): the "table" prefix is dropped,
// `\t` and `\n` become a tab and a newline. funcs add to or replace
// docker's functions.
func Parse(format string, funcs template.FuncMap) (*template.Template, error) {
	body := format
	if IsTable(body) {
		body = body[len(TableKey):]
	}
	body = strings.Trim(body, " ")
	body = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(body)
	tmpl, err := templates.New("").Funcs(template.FuncMap{"json": JSON}).Funcs(funcs).Parse(body)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return tmpl, nil
}

// Write renders rows (a slice of structs or pointers to structs) as the
// options say. Nothing is written if any row fails to render.
func Write[T any](w io.Writer, spec Spec, o Options, rows []T) error {
	format := spec.Resolve(o)
	// {{json .}} is a row as docker prints it: every field, keys sorted.
	rowJSON := func(v any) (string, error) {
		if _, ok := v.(T); ok {
			v = fieldsOf(v)
		}
		return JSON(v)
	}
	tmpl, err := Parse(format, template.FuncMap{"json": rowJSON})
	if err != nil {
		return err
	}
	// A field rows do not have fails even when there are no rows, so that
	// a script's typo is not hidden by an empty listing. (Only that error:
	// other functions may fail on a zero row's empty values.)
	var zero T
	if t := reflect.TypeOf(zero); len(rows) == 0 && t != nil && t.Kind() == reflect.Struct {
		if err := tmpl.Execute(io.Discard, zero); err != nil && strings.Contains(err.Error(), "can't evaluate field") {
			return err
		}
	}
	var body bytes.Buffer
	for _, r := range rows {
		if err := tmpl.Execute(&body, r); err != nil {
			return err
		}
		body.WriteString("\n")
	}
	if !IsTable(format) {
		_, err := body.WriteTo(w)
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	var head bytes.Buffer
	// Headers are the template run over the header names, with functions
	// that leave a name as it is (docker's HeaderFunctions); like docker,
	// a header the template cannot make stays partial rather than failing.
	_ = template.Must(tmpl.Clone()).Funcs(templates.HeaderFunctions).Execute(&head, spec.Headers)
	head.WriteString("\n")
	head.WriteTo(tw)
	body.WriteTo(tw)
	return tw.Flush()
}

// JSON is docker's json function (no HTML escaping, no trailing newline).
func JSON(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

// fieldsOf maps a struct's exported fields (not those tagged `json:"-"`)
// by name; anything else is returned unchanged.
func fieldsOf(v any) any {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return v
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return v
	}
	m := map[string]any{}
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() || f.Anonymous || f.Tag.Get("json") == "-" {
			continue
		}
		m[f.Name] = rv.Field(i).Interface()
	}
	return m
}
