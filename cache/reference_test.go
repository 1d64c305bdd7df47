package cache

import (
	"strings"
	"testing"

	"github.com/distribution/reference"
)

// referenceCorpus: valid and invalid references, at the grammar's edges.
var referenceCorpus = []string{
	"", "busybox", "busybox:latest", "busybox:1.36.1-musl", "library/busybox", "docker.io/busybox", "docker.io/library/busybox:x",
	"index.docker.io/busybox", "index.docker.io/foo/bar", "localhost/bb:latest", "localhost/bb", "localhost:5000/a/b:c",
	"localhost:5000", "localhost", "example.com/a", "example.com:443/a/b/c:v1", "Example.com/a", "EXAMPLE/a", "exa_mple.com/a",
	"127.0.0.1:5000/x", "[::1]:5000/x", "[::1]/x", "[fe80::1%25eth0]/x", "[]/x", "[::1]:/x", "a.com:/x", "a.com:5x/x",
	":5000/x", "-a.com/x", "a-.com/x", "a..com/x", "a.com./x", "foo/bar", "foo/bar/baz", "Foo", "foo/Bar", "foo:Bar",
	"foo:bar:baz", "foo:", "foo@", "foo@sha256:", "a__b", "a___b", "a_.b", "a..b", "a.b", "a---b", "a-_b", "-a", "a-", "a_",
	"a//b", "/a", "a/", "a b", "a\tb", "ä", "a:ä", "a:_x", "a:.x", "a:-x", "a:" + strings.Repeat("x", 128), "a:" + strings.Repeat("x", 129),
	strings.Repeat("a", 250), strings.Repeat("a", 256), "x/" + strings.Repeat("a", 254), "docker.io/" + strings.Repeat("a/", 127) + "a",
	"busybox@sha256:" + strings.Repeat("ab", 32), "busybox:t@sha256:" + strings.Repeat("ab", 32), "busybox@sha256:" + strings.Repeat("ab", 31),
	"busybox@sha256:" + strings.Repeat("AB", 32), "busybox@sha512:" + strings.Repeat("ab", 64), "busybox@sha384:" + strings.Repeat("ab", 24),
	"busybox@md5:" + strings.Repeat("ab", 16), "busybox@a+b.c_d-e:" + strings.Repeat("0", 32), "busybox@a++b:" + strings.Repeat("0", 32),
	"busybox@1a:" + strings.Repeat("0", 32), "busybox@a-:" + strings.Repeat("0", 32), "busybox@a:" + strings.Repeat("0", 31),
	"busybox@a:b:" + strings.Repeat("0", 32), "a@b@sha256:" + strings.Repeat("ab", 32), strings.Repeat("ab", 32), strings.Repeat("AB", 32),
	strings.Repeat("ab", 32) + ":t", "sha256:" + strings.Repeat("ab", 32), "k8s.gcr.io/pause:3.9", "ghcr.io/o/r/s:t",
	"registry:5000/x", "registry.local/x@sha256:" + strings.Repeat("cd", 32),
}

// TestReferenceMatchesDistribution: ParseReference accepts what
// distribution/reference's ParseNormalizedNamed accepts, fails with its
// message otherwise, and gives the same forms.
func TestReferenceMatchesDistribution(t *testing.T) {
	for _, s := range referenceCorpus {
		compareReference(t, s)
	}
}

func FuzzReferenceMatchesDistribution(f *testing.F) {
	for _, s := range referenceCorpus {
		f.Add(s)
	}
	f.Fuzz(compareReference)
}

func compareReference(t *testing.T, s string) {
	got, err := ParseReference(s)
	want, wantErr := reference.ParseNormalizedNamed(s)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v, distribution/reference's %v", s, err, wantErr)
	}
	if err != nil {
		if err.Error() != wantErr.Error() {
			t.Errorf("%q: error %q, distribution/reference's %q", s, err, wantErr)
		}
		return
	}
	var wantTag, wantDigest string
	if tg, ok := want.(reference.Tagged); ok {
		wantTag = tg.Tag()
	}
	if d, ok := want.(reference.Digested); ok {
		wantDigest = d.Digest().String()
	}
	for _, c := range [][3]string{
		{"String", got.String(), want.String()},
		{"Name", got.Name(), want.Name()},
		{"Tag", got.Tag(), wantTag},
		{"Digest", string(got.Digest()), wantDigest},
		{"FamiliarName", got.FamiliarName(), reference.FamiliarName(want)},
		{"FamiliarString", got.FamiliarString(), reference.FamiliarString(want)},
		{"WithDefaultTag", got.WithDefaultTag().String(), reference.TagNameOnly(want).String()},
	} {
		if c[1] != c[2] {
			t.Errorf("%q: %s %q, distribution/reference's %q", s, c[0], c[1], c[2])
		}
	}
	if got.NameOnly() != reference.IsNameOnly(want) {
		t.Errorf("%q: NameOnly %v, distribution/reference's %v", s, got.NameOnly(), reference.IsNameOnly(want))
	}
}
