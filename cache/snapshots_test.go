package cache

import (
	"errors"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestLowers(t *testing.T) {
	s := openTestStore(t)
	a := importTree(t, s, map[string]string{"a": "1"})
	b := importTree(t, s, map[string]string{"b": "2"})
	empty := importTree(t, s, map[string]string{})
	if !empty.EmptyLayer() {
		t.Fatalf("a layer of an empty directory is not empty: %d bytes", empty.Size)
	}
	for _, tc := range []struct {
		name  string
		chain []Layer
		want  []string
	}{
		{"scratch", nil, nil},
		{"only empty layers", []Layer{empty, empty}, nil},
		{"top-most first", []Layer{a, b}, []string{s.SnapshotDir(b.DiffID), s.SnapshotDir(a.DiffID)}},
		{"empty layers left out", []Layer{a, empty, b, empty}, []string{s.SnapshotDir(b.DiffID), s.SnapshotDir(a.DiffID)}},
		{"top-most copy of a repeated layer", []Layer{a, b, a}, []string{s.SnapshotDir(a.DiffID), s.SnapshotDir(b.DiffID)}},
	} {
		var chain []digest.Digest
		for _, l := range tc.chain {
			chain = append(chain, l.DiffID)
		}
		got, err := s.Lowers(chain)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Lowers = %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := s.Lowers([]digest.Digest{a.DiffID, digest.FromString("missing")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lowers of a missing layer: %v, want ErrNotFound", err)
	}
}
