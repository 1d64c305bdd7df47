package cache

import (
	"os"
	"testing"
)

// The test binary doubles as kiln's trash deleter, so that the tests that
// set DeleterTestEnv see the real detached process (the others delete the
// trash in goroutines that Close waits for).
func TestMain(m *testing.M) {
	if IsDeleter() {
		Delete()
	}
	os.Exit(m.Run())
}
