package builder

import (
	"fmt"
	"os"
	"testing"

	"github.com/kiln-build/kiln/runner"
)

// The test binary doubles as the sandbox init of RUN steps (the builder
// re-executes its own binary, as kiln does), and runs in its own mount
// namespace so that the overlay mounts of COPY, ADD and WORKDIR steps die
// with it, as kiln build's do.
func TestMain(m *testing.M) {
	if runner.IsInit() {
		runner.Init()
	}
	if os.Geteuid() == 0 {
		if err := runner.EnterMountNamespace(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}
