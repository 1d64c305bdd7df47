package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/docker/cli/templates"
)

// Inspect writes objects as `docker inspect` does: an indented JSON array
// for "" and "json", else each object through the Go template, one per
// line. The template sees the objects' JSON (docker's field names, numbers
// as written); a key the JSON lacks is an error unless the object's Go
// type has that field (one left out when empty, such as SizeRw without
// --size, prints as docker prints it: "<nil>").
func Inspect(w io.Writer, format string, objs []any) error {
	if format == "" || format == JSONKey {
		if objs == nil {
			objs = []any{}
		}
		data, err := json.MarshalIndent(objs, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	}
	tmpl, err := templates.Parse(format)
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	tmpl = tmpl.Option("missingkey=error")
	var out bytes.Buffer
	for _, o := range objs {
		generic, err := generic(o)
		if err != nil {
			return err
		}
		var one bytes.Buffer
		if err := tmpl.Execute(&one, generic); err != nil {
			one.Reset()
			if terr := tmpl.Execute(&one, o); terr != nil {
				return fmt.Errorf("template parsing error: %w", err)
			}
		}
		one.WriteTo(&out)
		out.WriteString("\n")
	}
	_, err = out.WriteTo(w)
	return err
}

// Object writes one object (info, version): its JSON on one line for
// "json", else through the Go template as Inspect does. The caller prints
// its own text for "".
func Object(w io.Writer, format string, obj any) error {
	if format == JSONKey {
		s, err := JSON(obj)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, s)
		return err
	}
	return Inspect(w, format, []any{obj})
}

// generic is v as its JSON decodes: maps, slices, json.Number.
func generic(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var g any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&g); err != nil {
		return nil, err
	}
	return g, nil
}
