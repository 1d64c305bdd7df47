//go:build linux && cgo

package warmstart

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

// vmFlags is the VmFlags of the mapping of this process holding addr.
func vmFlags(t *testing.T, addr uintptr) []string {
	t.Helper()
	return kilntest.MappingAt(t, "self", addr).Flags
}

var sink []byte

// heapFlags reports the VmFlags of the heap mapping of a fresh object.
func heapFlags(t *testing.T) []string {
	sink = make([]byte, 64)
	return vmFlags(t, uintptr(unsafe.Pointer(&sink[0])))
}

func TestHeapIsAdvised(t *testing.T) {
	if strings.Contains(os.Getenv("GODEBUG"), "disablethp=1") {
		t.Skip("GODEBUG=disablethp=1 is set for this test process")
	}
	if f := heapFlags(t); !slices.Contains(f, "hg") {
		t.Fatalf("the heap's mapping has VmFlags %v, without hg (MADV_HUGEPAGE)", f)
	}
	// A heap grown later, past what the runtime mapped at its start, too.
	big := make([]byte, 64<<20)
	if f := vmFlags(t, uintptr(unsafe.Pointer(&big[len(big)-1]))); !slices.Contains(f, "hg") {
		t.Fatalf("the grown heap's mapping has VmFlags %v, without hg", f)
	}
}

// TestDisableTHP: GODEBUG=disablethp=1 has the runtime undo the advice.
func TestDisableTHP(t *testing.T) {
	if os.Getenv("HUGEHEAP_CHILD") == "1" {
		f := heapFlags(t)
		fmt.Printf("flags: %s\n", strings.Join(f, " "))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDisableTHP$", "-test.v")
	cmd.Env = append(os.Environ(), "HUGEHEAP_CHILD=1", "GODEBUG=disablethp=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	i := strings.Index(string(out), "flags: ")
	if i < 0 {
		t.Fatalf("child printed no flags:\n%s", out)
	}
	flags := strings.Fields(strings.SplitN(string(out[i+len("flags: "):]), "\n", 2)[0])
	if slices.Contains(flags, "hg") || !slices.Contains(flags, "nh") {
		t.Fatalf("with GODEBUG=disablethp=1 the heap's mapping has VmFlags %v, want nh and no hg", flags)
	}
}

// TestOtherMappingsPass: only the runtime's heap chunks are advised.
func TestOtherMappingsPass(t *testing.T) {
	const chunk = 4 << 20
	// An aligned address range of two chunks, reserved by the kernel.
	base, err := cMmap(0, 3*chunk, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Syscall(unix.SYS_MUNMAP, base, 3*chunk, 0)
	at := (base + chunk - 1) &^ (chunk - 1)
	for _, tc := range []struct {
		name        string
		addr, len   uintptr
		prot, flags int
		advised     bool
	}{
		{"heap chunk", at, chunk, unix.PROT_READ | unix.PROT_WRITE, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED, true},
		{"unaligned length", at, chunk - 4096, unix.PROT_READ | unix.PROT_WRITE, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED, false},
		{"unaligned address", at + 4096, chunk, unix.PROT_READ | unix.PROT_WRITE, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED, false},
		{"read-only", at, chunk, unix.PROT_READ, unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_FIXED, false},
		{"shared", at, chunk, unix.PROT_READ | unix.PROT_WRITE, unix.MAP_SHARED | unix.MAP_ANONYMOUS | unix.MAP_FIXED, false},
	} {
		p, err := cMmap(tc.addr, tc.len, tc.prot, tc.flags)
		if err != nil {
			t.Fatalf("%s: mmap: %v", tc.name, err)
		}
		if p != tc.addr {
			t.Fatalf("%s: mapped at %#x, asked %#x", tc.name, p, tc.addr)
		}
		if got := slices.Contains(vmFlags(t, p), "hg"); got != tc.advised {
			t.Errorf("%s: advised %v, want %v", tc.name, got, tc.advised)
		}
		// Back to a reservation, for the next case.
		if _, err := cMmap(at, 2*chunk, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED); err != nil {
			t.Fatal(err)
		}
	}
	// A failure is the kernel's, with its errno.
	if _, err := cMmap(at+1, chunk, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED); err != unix.EINVAL {
		t.Errorf("a misaligned fixed mapping: err %v, want EINVAL", err)
	}
}
