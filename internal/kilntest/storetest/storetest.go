// Package storetest opens a content store of its own for a test.
package storetest

import (
	"testing"

	"github.com/kiln-build/kiln/cache"
)

// OpenStore opens a store in a fresh temporary root, closed at cleanup.
func OpenStore(t testing.TB) *cache.Store {
	t.Helper()
	s, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
