package runner

import (
	"slices"
	"testing"

	"github.com/kiln-build/kiln/runner/seccomp"
)

// Check skips compiling the built-in default profile, so the default must
// compile for every capability set a container can have: none, docker's,
// each capability alone, every one of them.
func TestDefaultProfileCompilesForEveryCapabilitySet(t *testing.T) {
	sets := [][]string{nil, DefaultCapabilities, AllCapabilities()}
	for _, c := range AllCapabilities() {
		sets = append(sets, []string{c}, append(append([]string{}, DefaultCapabilities...), c))
	}
	for _, caps := range sets {
		if _, err := seccompFilter(nil, caps); err != nil {
			t.Errorf("default profile with %v: %v", caps, err)
		}
	}
}

// Check fails where Resolve does: a bad capability, a bad profile.
func TestSecurityCheckAgreesWithResolve(t *testing.T) {
	failed := 0
	for _, s := range []Security{
		{},
		{CapAdd: []string{"ALL"}},
		{CapAdd: []string{"CAP_NOPE"}},
		{CapDrop: []string{"nope"}, Privileged: true},
		{SeccompProfile: []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`)},
		{SeccompProfile: []byte(`{"defaultAction":"SCMP_ACT_NOPE"}`)},
		{SeccompProfile: []byte(`not json`)},
		{SeccompUnconfined: true, CapAdd: []string{"CAP_NOPE"}},
	} {
		_, rerr := s.Resolve()
		cerr := s.Check()
		failed += map[bool]int{true: 1}[cerr != nil]
		if (rerr == nil) != (cerr == nil) || rerr != nil && cerr.Error() != rerr.Error() {
			t.Errorf("%+v: Check %v, Resolve %v", s, cerr, rerr)
		}
	}
	if failed != 4 {
		t.Errorf("%d of the options failed the check, want 4", failed)
	}
}

// The default filter compiled once (and ahead, by WarmSeccomp) is the one
// compiling gives, whatever the order of the capabilities, and a copy.
func TestDefaultFilterMemo(t *testing.T) {
	WarmSeccomp()
	caps := slices.Clone(DefaultCapabilities)
	slices.Reverse(caps)
	got, err := seccompFilter(nil, caps)
	if err != nil {
		t.Fatal(err)
	}
	want, err := seccomp.Compile(seccomp.Default(), DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	if got.Flags != want.Flags || !slices.Equal(got.Program, want.Program) {
		t.Fatalf("memoized default filter differs from a fresh compilation (%d vs %d instructions)", len(got.Program), len(want.Program))
	}
	got.Program[0].K++
	if again, _ := seccompFilter(nil, DefaultCapabilities); !slices.Equal(again.Program, want.Program) {
		t.Fatal("a caller's change reached the memoized filter")
	}
}
