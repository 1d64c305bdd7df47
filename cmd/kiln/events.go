package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
	"github.com/kiln-build/kiln/runner/container"
)

func newEventsCommand(g *globals) *cobra.Command {
	var since, until, fmtArg string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the store's journal (follows new events unless --until is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			var o container.EventsOptions
			var err error
			if since != "" {
				if o.Since, err = parseEventTime(since, now); err != nil {
					return fmt.Errorf("--since: %w", err)
				}
			}
			if until != "" {
				if o.Until, err = parseEventTime(until, now); err != nil {
					return fmt.Errorf("--until: %w", err)
				}
			}
			o.Follow = until == "" || o.Until.After(now)
			match, err := eventFilter(filters)
			if err != nil {
				return err
			}
			var tmpl *template.Template
			if fmtArg != "" && fmtArg != format.JSONKey {
				if tmpl, err = format.Parse(fmtArg, nil); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			cs := container.NewStore(storeRoot(g))
			return cs.Events(cmd.Context(), o, func(e container.Event) error {
				if !match(e) {
					return nil
				}
				switch {
				case fmtArg == format.JSONKey:
					s, _ := format.JSON(e)
					fmt.Fprintln(out, s)
				case tmpl != nil:
					if err := tmpl.Execute(out, e); err != nil {
						return err
					}
					fmt.Fprintln(out)
				default:
					fmt.Fprintln(out, eventLine(e))
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "show all events created since timestamp (RFC 3339, Unix seconds, or a duration such as 10m)")
	f.StringVar(&until, "until", "", "stream events until this timestamp")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided (container, event, image, label, type)")
	f.StringVar(&fmtArg, "format", "", "format output using a Go template, or json")
	return cmd
}

// eventLine is docker's default line:
// 2024-01-02T03:04:05.000000000Z container start ID (image=bb, name=web).
func eventLine(e container.Event) string {
	keys := make([]string, 0, len(e.Actor.Attributes))
	for k := range e.Actor.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]string, len(keys))
	for i, k := range keys {
		attrs[i] = k + "=" + e.Actor.Attributes[k]
	}
	t := time.Unix(0, e.TimeNano).Local().Format("2006-01-02T15:04:05.000000000Z07:00")
	return fmt.Sprintf("%s %s %s %s (%s)", t, e.Type, e.Action, e.Actor.ID, strings.Join(attrs, ", "))
}

// parseEventTime parses docker's --since/--until: RFC 3339 (with or
// without time zone), Unix seconds (with fractions), or a duration before
// now.
func parseEventTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q", s)
}

// eventFilter builds the filter of --filter KEY=VALUE flags: values of the
// same key are alternatives, different keys must all match.
func eventFilter(filters []string) (func(container.Event) bool, error) {
	want := map[string][]string{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", f)
		}
		switch k {
		case "container", "event", "image", "label", "type":
		default:
			return nil, fmt.Errorf("invalid filter %q", k)
		}
		want[k] = append(want[k], v)
	}
	return func(e container.Event) bool {
		for k, vals := range want {
			ok := false
			for _, v := range vals {
				switch k {
				case "container":
					ok = ok || e.Actor.ID == v || strings.HasPrefix(e.Actor.ID, v) || e.Actor.Attributes["name"] == v
				case "event":
					ok = ok || e.Action == v || strings.HasPrefix(e.Action, v+":")
				case "image":
					ok = ok || e.Actor.Attributes["image"] == v || e.From == v
				case "type":
					ok = ok || e.Type == v
				case "label":
					lk, lv, hasV := strings.Cut(v, "=")
					av, present := e.Actor.Attributes[lk]
					ok = ok || (present && (!hasV || av == lv))
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}
