package runner

import "testing"

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
