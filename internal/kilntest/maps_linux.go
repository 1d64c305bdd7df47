package kilntest

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Mapping is one mapping of a process, as its smaps lists it.
type Mapping struct {
	Start, End uint64
	Perms      string   // r-xp, rw-p, ...
	Path       string   // "" for an anonymous mapping
	Flags      []string // VmFlags: hg (MADV_HUGEPAGE), nh (MADV_NOHUGEPAGE), ...
}

// Mappings lists the mappings of process pid ("self" for this one).
func Mappings(t testing.TB, pid string) []Mapping {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ms []Mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fs[0], "-"); ok && len(fs) >= 5 { // start-end perms offset dev inode [path]
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s smaps: bad mapping line %q", pid, sc.Text())
			}
			m := Mapping{Start: a, End: b, Perms: fs[1]}
			if len(fs) >= 6 {
				m.Path = fs[5]
			}
			ms = append(ms, m)
			continue
		}
		if fs[0] == "VmFlags:" && len(ms) > 0 {
			ms[len(ms)-1].Flags = fs[1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ms
}

// MappingAt is the mapping of process pid that holds addr.
func MappingAt(t testing.TB, pid string, addr uintptr) Mapping {
	t.Helper()
	for _, m := range Mappings(t, pid) {
		if uint64(addr) >= m.Start && uint64(addr) < m.End {
			return m
		}
	}
	t.Fatalf("no mapping of %s holds %#x", pid, addr)
	return Mapping{}
}
