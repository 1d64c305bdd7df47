//go:build linux && cgo

package warmstart

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestTextMappedAtStart: the constructor maps the code at start, except in
// a sandbox's init. (What it saves shows in the bench: a test binary is
// small enough to be mapped whole by its first faults anyway.)
func TestTextMappedAtStart(t *testing.T) {
	if os.Getenv("WARMSTART_CHILD") == "1" {
		fmt.Printf("populated: %v\n", textPopulated())
		return
	}
	if !textPopulated() {
		t.Fatal("the code was not mapped at start")
	}

	// Not in a sandbox's init.
	cmd := exec.Command(os.Args[0], "-test.run=^TestTextMappedAtStart$", "-test.v")
	cmd.Args[0] = "kiln-runner-init"
	cmd.Env = append(os.Environ(), "WARMSTART_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "populated: false") {
		t.Fatalf("as kiln-runner-init, the code was mapped at start; want it left to faults:\n%s", out)
	}
}
