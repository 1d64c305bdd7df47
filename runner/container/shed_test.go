package container

import (
	"os/exec"
	"slices"
	"testing"
)

func TestCleanFileMappings(t *testing.T) {
	smaps := `00400000-00afc000 r-xp 00000000 fd:01 123 /usr/bin/kiln
Size:               7152 kB
Rss:                6060 kB
Anonymous:             0 kB
00afc000-01257000 r--p 006fc000 fd:01 123 /usr/bin/kiln
Size:               7532 kB
Anonymous:             8 kB
01257000-012c0000 rw-p 00e57000 fd:01 123 /usr/bin/kiln
Anonymous:           292 kB
137e79000000-137e79800000 rw-p 00000000 00:00 0 
Anonymous:          1768 kB
7f3b80684000-7f3b806aa000 r--p 00000000 fd:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7ffd1000-7ffd3000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
`
	want := [][2]uint64{{0x400000, 0xafc000}, {0x7f3b80684000, 0x7f3b806aa000}}
	if got := cleanFileMappings(smaps); !slices.Equal(got, want) {
		t.Errorf("cleanFileMappings = %x, want %x", got, want)
	}
}

// A process that sheds keeps working: run this test binary's shed in a
// child (it must not crash) by way of the helper below.
func TestShedKeepsWorking(t *testing.T) {
	out, err := exec.Command("/proc/self/exe", "-test.run=^TestShedHelper$").CombinedOutput()
	if err != nil {
		t.Fatalf("after shed: %v\n%s", err, out)
	}
}

func TestShedHelper(t *testing.T) {
	shed()
	// Exercise code, data and the runtime after the pages went.
	m := map[string][]int{}
	for i := range 1000 {
		m[string(rune('a'+i%26))] = append(m[string(rune('a'+i%26))], i)
	}
	if _, err := exec.LookPath("sh"); err != nil || len(m) != 26 {
		t.Fatal("broken after shed")
	}
}
