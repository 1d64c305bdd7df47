package cache

import (
	"errors"
	"testing"

	"github.com/kiln-build/kiln/layer"
)

// TestSentinels: a missing image says so (and is still ErrNotFound); the
// store's ErrInvalid is the layer package's.
func TestSentinels(t *testing.T) {
	s := openTestStore(t)
	_, err := s.Resolve("nothing:here")
	if !errors.Is(err, ErrImageNotFound) || !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve of a missing image: %v, want ErrImageNotFound and ErrNotFound", err)
	}
	if want := "no such image: nothing:here: not found"; err == nil || err.Error() != want {
		t.Errorf("Resolve of a missing image: %q, want %q", err, want)
	}
	if _, err := s.Layer("sha256:" + "00000000000000000000000000000000000000000000000000000000000000aa"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrImageNotFound) {
		t.Errorf("a missing layer: %v, want ErrNotFound and not ErrImageNotFound", err)
	}
	if _, err := layer.ParseCompression("lz4"); !errors.Is(err, ErrInvalid) {
		t.Errorf("layer's invalid input is not the store's ErrInvalid: %v", err)
	}
}
