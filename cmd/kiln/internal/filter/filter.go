// Package filter applies docker's --filter KEY=VALUE to kiln's listings and
// prunes. Values of one key are alternatives (any may match), different keys
// must all match; label= values must all match and label!= excludes what
// matches all of its values, as docker's.
//
// A command declares the keys it takes as a Keys map; adding a key is one
// line:
//
//	keys := filter.Keys[*container.Container]{
//		"name":  filter.Substring(func(c *container.Container) string { return c.Name }),
//		"label": filter.Label(func(c *container.Container) map[string]string { return c.Config.Labels }),
//	}
//	list, err := filter.Apply(args, keys, list)
package filter

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ErrInvalid: a filter the command does not take, or a value it cannot
// parse. The errors say which; they match ErrInvalid with errors.Is.
var ErrInvalid = errors.New("invalid filter")

type invalidError struct{ msg string }

func (e invalidError) Error() string        { return e.msg }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func invalid(format string, a ...any) error { return invalidError{fmt.Sprintf(format, a...)} }

// Args are parsed --filter values by key; "label!=x" is key "label!".
type Args map[string][]string

// Parse parses --filter flags ("key=value"; "key!=value" for the label! key).
func Parse(flags []string) (Args, error) {
	a := Args{}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, invalid("bad format of filter (expected name=value): %s", f)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		a[k] = append(a[k], strings.TrimSpace(v))
	}
	return a, nil
}

// Get returns the values of key.
func (a Args) Get(key string) []string { return a[key] }

// Pred is one filter value, parsed: whether an item matches it.
type Pred[T any] func(T) bool

// Key is one filter key: how a value becomes a predicate (parsed once, so a
// bad value fails before anything is listed or removed).
type Key[T any] struct {
	Parse func(value string) (Pred[T], error)
	// All: an item must match every value (docker's label), not any.
	All bool
	// Not: an item matching (by All or any) is excluded (label!).
	Not bool
}

// Keys are the keys a command takes.
type Keys[T any] map[string]Key[T]

// Compile checks args against keys and parses every value. The result says
// whether an item passes all the filters.
func Compile[T any](args Args, keys Keys[T]) (Pred[T], error) {
	type compiled struct {
		preds    []Pred[T]
		all, not bool
	}
	var cs []compiled
	for k, vals := range args {
		key, ok := keys[k]
		if !ok {
			return nil, invalid("invalid filter '%s'", k)
		}
		c := compiled{all: key.All, not: key.Not}
		for _, v := range vals {
			p, err := key.Parse(v)
			if err != nil {
				return nil, invalid("invalid filter '%s=%s': %v", k, v, err)
			}
			c.preds = append(c.preds, p)
		}
		cs = append(cs, c)
	}
	return func(item T) bool {
		for _, c := range cs {
			m := c.all
			for _, p := range c.preds {
				if c.all {
					m = m && p(item)
				} else if p(item) {
					m = true
					break
				}
			}
			if m == c.not {
				return false
			}
		}
		return true
	}, nil
}

// Apply keeps the items that pass the filters.
func Apply[T any](args Args, keys Keys[T], items []T) ([]T, error) {
	ok, err := Compile(args, keys)
	if err != nil {
		return nil, err
	}
	var out []T
	for _, it := range items {
		if ok(it) {
			out = append(out, it)
		}
	}
	return out, nil
}

// Exact matches a field equal to the value.
func Exact[T any](field func(T) string) Key[T] {
	return Key[T]{Parse: func(v string) (Pred[T], error) {
		return func(it T) bool { return field(it) == v }, nil
	}}
}

// Prefix matches a field starting with the value (IDs).
func Prefix[T any](field func(T) string) Key[T] {
	return Key[T]{Parse: func(v string) (Pred[T], error) {
		return func(it T) bool { return strings.HasPrefix(field(it), v) }, nil
	}}
}

// Substring matches a field containing the value, as docker's name=
// (which also takes a regular expression; kiln takes one too).
func Substring[T any](field func(T) string) Key[T] {
	return Key[T]{Parse: func(v string) (Pred[T], error) {
		re, err := regexp.Compile(v)
		if err != nil {
			re = regexp.MustCompile(regexp.QuoteMeta(v))
		}
		return func(it T) bool { return re.MatchString(field(it)) }, nil
	}}
}

// Bool matches a boolean field against "true"/"1" or "false"/"0".
func Bool[T any](field func(T) bool) Key[T] {
	return Key[T]{Parse: func(v string) (Pred[T], error) {
		var want bool
		switch strings.ToLower(v) {
		case "true", "1":
			want = true
		case "false", "0":
		default:
			return nil, fmt.Errorf("not a boolean")
		}
		return func(it T) bool { return field(it) == want }, nil
	}}
}

// Label matches label=KEY (present) and label=KEY=VALUE; every value must match.
func Label[T any](labels func(T) map[string]string) Key[T] {
	return Key[T]{All: true, Parse: labelPred(labels)}
}

// NotLabel is label!=: items having every such label are excluded.
func NotLabel[T any](labels func(T) map[string]string) Key[T] {
	return Key[T]{All: true, Not: true, Parse: labelPred(labels)}
}

func labelPred[T any](labels func(T) map[string]string) func(string) (Pred[T], error) {
	return func(v string) (Pred[T], error) {
		k, want, hasValue := strings.Cut(v, "=")
		return func(it T) bool {
			got, ok := labels(it)[k]
			return ok && (!hasValue || got == want)
		}, nil
	}
}

// Until matches items created before a time: a duration ago ("24h"), a Unix
// timestamp or an RFC 3339 date, as docker's until=.
func Until[T any](created func(T) time.Time) Key[T] {
	return Key[T]{Parse: func(v string) (Pred[T], error) {
		t, err := ParseTime(v, time.Now())
		if err != nil {
			return nil, err
		}
		return func(it T) bool { return created(it).Before(t) }, nil
	}}
}

// Before and Since match items created before or after the one a value
// names; find resolves the value to that item's creation time.
func Before[T any](created func(T) time.Time, find func(string) (time.Time, error)) Key[T] {
	return Key[T]{Parse: func(v string) (Pred[T], error) {
		t, err := find(v)
		if err != nil {
			return nil, err
		}
		return func(it T) bool { return created(it).Before(t) }, nil
	}}
}

// Since: see Before.
func Since[T any](created func(T) time.Time, find func(string) (time.Time, error)) Key[T] {
	return Key[T]{Parse: func(v string) (Pred[T], error) {
		t, err := find(v)
		if err != nil {
			return nil, err
		}
		return func(it T) bool { return created(it).After(t) }, nil
	}}
}

// ParseTime reads docker's time values: a Go duration before now, Unix
// seconds (with an optional fraction), or an RFC 3339 date or date-time.
func ParseTime(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	sec, frac, _ := strings.Cut(v, ".")
	var s, ns int64
	if _, err := fmt.Sscanf(sec, "%d", &s); err == nil && fmt.Sprint(s) == sec {
		if frac != "" {
			frac = (frac + "000000000")[:9]
			if _, err := fmt.Sscanf(frac, "%d", &ns); err != nil {
				return time.Time{}, fmt.Errorf("%q is not a duration, timestamp or date", v)
			}
		}
		return time.Unix(s, ns), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a duration, timestamp or date", v)
}
