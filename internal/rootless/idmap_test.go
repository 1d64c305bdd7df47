package rootless

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSubIDs(t *testing.T) {
	const file = `# comment
alice:100000:65536
1001:300000:1000
bob:200000:65536
alice:400000:10
alice:bad:1
alice:1:0
alice:4294967290:100
alice:500000
`
	for _, c := range []struct {
		name string
		uid  int
		want []subRange
	}{
		{"alice", 1001, []subRange{{100000, 65536}, {300000, 1000}, {400000, 10}}},
		{"bob", 1002, []subRange{{200000, 65536}}},
		{"", 1001, []subRange{{300000, 1000}}}, // a uid without a passwd entry
		{"carol", 1003, nil},
	} {
		got, err := parseSubIDs(strings.NewReader(file), c.name, c.uid)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseSubIDs(%q, %d) = %v, %v; want %v", c.name, c.uid, got, err, c.want)
		}
	}
}

func TestIDMap(t *testing.T) {
	got := idMap(1000, []subRange{{100000, 65536}, {400000, 10}})
	want := []IDRange{{0, 1000, 1}, {1, 100000, 65536}, {65537, 400000, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("idMap = %v, want %v", got, want)
	}
	if args := strings.Join(mapArgs(got), " "); args != "0 1000 1 1 100000 65536 65537 400000 10" {
		t.Errorf("mapArgs = %s", args)
	}
	// Ranges past 2^32 ids are left out.
	if got := idMap(1000, []subRange{{1, 1<<32 - 1}}); len(got) != 1 {
		t.Errorf("idMap of an oversized range = %v", got)
	}
}

func TestParseIDMap(t *testing.T) {
	got, err := parseIDMap("         0       1000          1\n         1     100000      65536\n")
	want := []IDRange{{0, 1000, 1}, {1, 100000, 65536}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseIDMap = %v, %v", got, err)
	}
	if got[1].String() != "1:100000:65536" {
		t.Errorf("String = %s", got[1])
	}
	if _, err := parseIDMap("0 1000\n"); err == nil {
		t.Error("parseIDMap of a short line: no error")
	}
}
