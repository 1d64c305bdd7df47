package builder

import (
	"errors"
	"testing"

	"github.com/kiln-build/kiln/cache"
)

func TestParseHost(t *testing.T) {
	for in, want := range map[string]string{"db:10.0.0.1": "db:10.0.0.1", "db=10.0.0.1": "db:10.0.0.1", "v6:::1": "v6:::1", "v6=[fe80::1]": "v6:fe80::1"} {
		if got, err := ParseHost(in); err != nil || got != want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"db", "db:", ":1.2.3.4", "db:notanip", "db:host-gateway", "a b:1.2.3.4"} {
		if _, err := ParseHost(bad); !errors.Is(err, cache.ErrInvalid) {
			t.Errorf("ParseHost(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func TestIsGitURL(t *testing.T) {
	for in, want := range map[string]bool{
		"git://example.com/r":                  true,
		"git@github.com:o/r.git":               true,
		"https://example.com/o/r.git#main:sub": true,
		"file:///srv/r.git#v1":                 true,
		"https://example.com/ctx.tar.gz":       false,
		"file:///srv/dir":                      false,
		"./dir.git":                            false,
	} {
		if IsGitURL(in) != want {
			t.Errorf("IsGitURL(%q) = %v", in, !want)
		}
	}
}

func TestParseNamedContext(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string]NamedContext{
		"Img=docker-image://alpine:3": {Image: "alpine:3"},
		"s=target:build":              {Stage: "build"},
		"d=" + dir:                    {Dir: dir},
	} {
		_, got, layout, err := ParseNamedContext(in)
		if err != nil || got != want || layout != "" {
			t.Errorf("ParseNamedContext(%q) = %+v %q %v", in, got, layout, err)
		}
	}
	if name, _, layout, err := ParseNamedContext("L=oci-layout:///x/y:t"); err != nil || name != "l" || layout != "/x/y:t" {
		t.Errorf("oci-layout: %q %q %v", name, layout, err)
	}
	for _, bad := range []string{"noequals", "=x", "n=", "n=https://example.com/x", "n=" + dir + "/missing"} {
		if _, _, _, err := ParseNamedContext(bad); !errors.Is(err, cache.ErrInvalid) {
			t.Errorf("ParseNamedContext(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
