package builder

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// keyFixture is a walked context whose names need every kind of JSON
// escaping, with a symlink and an empty directory.
func keyFixture(t *testing.T) (string, []*contextFile) {
	t.Helper()
	ctx := t.TempDir()
	names := []string{"plain.go", "a<b>&c", "quote\"back\\slash", "tab\there", "ünï", "bad\xffutf8", "line\u2028sep", "del\x7f"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(ctx, "src", n), []byte(n), 0o644); err != nil {
			if err := os.MkdirAll(filepath.Join(ctx, "src", "empty"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ctx, "src", n), []byte(n), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink("../x<y", filepath.Join(ctx, "src", "link")); err != nil {
		t.Fatal(err)
	}
	info, err := os.Lstat(filepath.Join(ctx, "src"))
	if err != nil {
		t.Fatal(err)
	}
	files, err := walkSource(source{path: filepath.Join(ctx, "src"), info: info})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		if f.fi().Mode().IsRegular() {
			f.setDigest(digest.FromString(fmt.Sprint(i)))
		}
	}
	return ctx, files
}

// TestCopyKeyStreamed: the key and the file list written as streams are
// byte for byte what json.Marshal makes of the same values (the stored keys
// and list digests depend on it).
func TestCopyKeyStreamed(t *testing.T) {
	ctx, files := keyFixture(t)
	type marshalled struct {
		Name, Base string
		Dir        bool
		Files      []string
	}
	describe := func(fs []*contextFile) []string {
		var out []string
		for _, f := range fs {
			out = append(out, fmt.Sprintf("%s %s %o %d %s %s", f.rel, map[bool]string{true: "d", false: map[bool]string{true: "l", false: "f"}[f.symlink() != ""]}[f.fi().IsDir()],
				unixPerm(f.fi().Mode()), f.fi().Size(), f.digest(), f.symlink()))
		}
		return out
	}
	for _, sources := range [][]keySource{
		nil,
		{{Name: "src", Base: "src", Dir: true, Files: files}},
		{{Name: "a<b", Base: "&", Files: files[:1]}, {Name: "empty", Base: "empty", Dir: true}},
	} {
		var want []marshalled
		for _, s := range sources {
			want = append(want, marshalled{s.Name, s.Base, s.Dir, describe(s.Files)})
		}
		inputs := func(src any) any {
			return struct {
				Op, Dest string
				Sources  any
				Epoch    *time.Time
				Excludes []string `json:",omitempty"`
			}{"COPY", "/d<&>", src, nil, []string{"x"}}
		}
		parent := digest.FromString("parent")
		hole := newHole()
		got := stepKeyStreaming(parent, inputs(holeValue(hole)), hole, func(w io.Writer) { writeKeySources(w, sources) })
		if exp := stepKey(parent, inputs(want)); got != exp {
			var buf bytes.Buffer
			writeKeySources(&buf, sources)
			t.Errorf("streamed key %s, marshalled %s\nstreamed: %s\nmarshalled: %s", got, exp, buf.Bytes(), mustJSON(want))
		}
	}

	listing := newContextListing(ctx, append(files, files[2])) // listed twice: once in the list
	m := map[string]string{}
	for _, f := range files {
		rel, _ := filepath.Rel(ctx, f.host)
		m[filepath.ToSlash(rel)] = describe([]*contextFile{f})[0]
	}
	var buf bytes.Buffer
	if err := listing.writeJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), mustJSON(m)) {
		t.Errorf("listing JSON\n%s\nwant\n%s", buf.Bytes(), mustJSON(m))
	}
	if listingDigest(listing) != digest.FromBytes(mustJSON(m)) || listingDigest(mapListing(m)) != digest.FromBytes(mustJSON(m)) {
		t.Errorf("listing digests differ from the marshalled map's")
	}
	if got := listing.entries(); len(got) != len(m) {
		t.Errorf("entries: %d, want %d", len(got), len(m))
	}
}
