package runner

import (
	"reflect"
	"strings"
	"testing"
)

func TestWithDefaultEnv(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want []string
	}{
		{nil, []string{"PATH=" + DefaultPath, "HOME=/home/u"}},
		{[]string{"PATH=/x", "A=b"}, []string{"PATH=/x", "A=b", "HOME=/home/u"}},
		{[]string{"HOME=/h"}, []string{"HOME=/h", "PATH=" + DefaultPath}},
		{[]string{"PATHX=1", "HOME="}, []string{"PATHX=1", "HOME=", "PATH=" + DefaultPath}},
	} {
		if got := withDefaultEnv(tc.env, "/home/u"); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("withDefaultEnv(%q) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestNewInitConfig(t *testing.T) {
	ok := Spec{Upper: "/u", Work: "/w", Rootfs: "/r", Args: []string{"true"}}
	c, err := newInitConfig(&ok)
	if err != nil || c.Cwd != "/" || c.Hostname != DefaultHostname || c.NetNone {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Spec)
		err    string
	}{
		{"no args", func(s *Spec) { s.Args = nil }, "no command"},
		{"no upper", func(s *Spec) { s.Upper = "" }, "required"},
		{"relative lower", func(s *Spec) { s.Lowers = []string{"l"} }, "not absolute"},
		{"network", func(s *Spec) { s.Network = "bridge" }, "must be host or none"},
		{"mount on /", func(s *Spec) { s.ExtraMounts = []Mount{{Type: "tmpfs", Target: "/"}} }, "below /"},
		{"relative mount", func(s *Spec) { s.ExtraMounts = []Mount{{Type: "tmpfs", Target: "x"}} }, "below /"},
	} {
		s := ok
		tc.mutate(&s)
		if _, err := newInitConfig(&s); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestNestedUnder(t *testing.T) {
	for _, tc := range []struct {
		target, dir string
		want        bool
	}{
		{"/dev/shm", "/dev", true},
		{"/dev", "/dev", false},
		{"/devx", "/dev", false},
		{"/a", "/", true},
		{"/a/b/../c", "/a", true},
	} {
		if got := nestedUnder(tc.target, tc.dir); got != tc.want {
			t.Errorf("nestedUnder(%q, %q) = %v", tc.target, tc.dir, got)
		}
	}
}
