// Package storetest opens a content store of its own for a test.
package storetest

import (
	"testing"

	"github.com/kiln-build/kiln/cache"
)

// OpenStore opens a store in a fresh temporary root, closed at cleanup
// once its trash is deleted.
func OpenStore(t testing.TB) *cache.Store {
	t.Helper()
	root := t.TempDir()
	s, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		// The deleter of the trash is done before the root goes.
		if err := cache.WaitTrash(root); err != nil {
			t.Error(err)
		}
	})
	return s
}
