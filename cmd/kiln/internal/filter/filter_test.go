package filter

import (
	"errors"
	"slices"
	"testing"
	"time"
)

type item struct {
	name    string
	labels  map[string]string
	created time.Time
	up      bool
}

func TestApply(t *testing.T) {
	now := time.Now()
	items := []item{
		{"web", map[string]string{"tier": "front", "env": "prod"}, now.Add(-3 * time.Hour), true},
		{"api", map[string]string{"tier": "back", "env": "prod"}, now.Add(-2 * time.Hour), false},
		{"db", map[string]string{"tier": "back"}, now.Add(-time.Minute), true},
	}
	keys := Keys[item]{
		"name":   Substring(func(i item) string { return i.name }),
		"exact":  Exact(func(i item) string { return i.name }),
		"label":  Label(func(i item) map[string]string { return i.labels }),
		"label!": NotLabel(func(i item) map[string]string { return i.labels }),
		"until":  Until(func(i item) time.Time { return i.created }),
		"up":     Bool(func(i item) bool { return i.up }),
	}
	cases := []struct {
		flags []string
		want  []string
	}{
		{nil, []string{"web", "api", "db"}},
		{[]string{"name=a"}, []string{"api"}},
		{[]string{"name=^[wd]"}, []string{"web", "db"}},                                        // a regular expression, as docker's
		{[]string{"exact=web", "exact=db"}, []string{"web", "db"}},                             // same key: OR
		{[]string{"exact=web", "up=false"}, nil},                                               // different keys: AND
		{[]string{"label=env"}, []string{"web", "api"}},                                        // presence
		{[]string{"label=tier=back"}, []string{"api", "db"}},                                   // value
		{[]string{"label=tier=back", "label=env=prod"}, []string{"api"}},                       // label values: all must match
		{[]string{"label!=env"}, []string{"db"}},                                               // label!: excluded when present
		{[]string{"label!=tier=back", "label!=env"}, []string{"web", "db"}},                    // excluded only when all match
		{[]string{"until=90m"}, []string{"web", "api"}},                                        // created more than 90 minutes ago
		{[]string{"until=" + now.Add(-150*time.Minute).Format(time.RFC3339)}, []string{"web"}}, // a date
		{[]string{"until=90m", "label=tier=back"}, []string{"api"}},
		{[]string{"up=true", "name=d"}, []string{"db"}},
	}
	for _, c := range cases {
		args, err := Parse(c.flags)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Apply(args, keys, items)
		if err != nil {
			t.Errorf("%v: %v", c.flags, err)
			continue
		}
		var names []string
		for _, i := range got {
			names = append(names, i.name)
		}
		if !slices.Equal(names, c.want) {
			t.Errorf("%v: got %v, want %v", c.flags, names, c.want)
		}
	}
	for _, bad := range [][]string{{"nope=1"}, {"up=maybe"}, {"until=soon"}, {"novalue"}} {
		args, err := Parse(bad)
		if err == nil {
			_, err = Apply(args, keys, items)
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: error %v, want ErrInvalid", bad, err)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for v, want := range map[string]time.Time{
		"10m":                  now.Add(-10 * time.Minute),
		"1699990000":           time.Unix(1699990000, 0),
		"1699990000.5":         time.Unix(1699990000, 500000000),
		"2023-11-14T22:13:20Z": time.Unix(1700000000, 0),
	} {
		got, err := ParseTime(v, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("%s: %v, %v; want %v", v, got, err, want)
		}
	}
}
