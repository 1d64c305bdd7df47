package seccomp

import (
	"reflect"
	"runtime"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

var kernel618 = mobyseccomp.KernelVersion{Kernel: 6, Major: 18}

type Syscall = mobyseccomp.Syscall

// TestResolveMatchesMoby compares the rules kiln keeps with the rules moby's
// own setupSeccomp keeps (GetDefaultProfile, as dockerd calls it), on this
// machine, for several capability sets.
func TestResolveMatchesMoby(t *testing.T) {
	kv, err := kernelVersion()
	if err != nil {
		t.Fatal(err)
	}
	for _, caps := range [][]string{nil, dockerCaps, {"CAP_SYS_ADMIN"}, append(dockerCaps[:len(dockerCaps):len(dockerCaps)], "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_BPF")} {
		spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
		want, err := mobyseccomp.GetDefaultProfile(spec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := resolve(Default(), target{goarch: runtime.GOARCH, caps: caps, kernel: kv})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.rules, want.Syscalls) {
			t.Errorf("caps %v: rules differ from moby's:\n got %d rules\nwant %d rules", caps, len(got.rules), len(want.Syscalls))
		}
		if !reflect.DeepEqual(got.arches, want.Architectures) {
			t.Errorf("caps %v: architectures %v, moby's %v", caps, got.arches, want.Architectures)
		}
	}
}

func TestResolveConditions(t *testing.T) {
	p := &Profile{LinuxSeccomp: specs.LinuxSeccomp{DefaultAction: specs.ActErrno}}
	rule := func(name string, in, ex *mobyseccomp.Filter) *Syscall {
		s := syscallRule([]string{name}, specs.ActAllow, nil)
		s.Includes, s.Excludes = in, ex
		return s
	}
	p.Syscalls = []*Syscall{
		rule("a", &mobyseccomp.Filter{Caps: []string{"CAP_X", "CAP_Y"}}, nil),                            // needs both
		rule("b", nil, &mobyseccomp.Filter{Caps: []string{"CAP_X", "CAP_Z"}}),                            // any excludes
		rule("c", &mobyseccomp.Filter{MinKernel: &mobyseccomp.KernelVersion{Kernel: 6, Major: 19}}, nil), // newer kernel
		rule("d", &mobyseccomp.Filter{MinKernel: &mobyseccomp.KernelVersion{Kernel: 6, Major: 18}}, nil),
		rule("e", nil, &mobyseccomp.Filter{MinKernel: &mobyseccomp.KernelVersion{Kernel: 5, Major: 4}}),
		rule("f", &mobyseccomp.Filter{Arches: []string{"arm64"}}, nil),
		rule("g", nil, &mobyseccomp.Filter{Arches: []string{"arm64"}}),
	}
	for _, tc := range []struct {
		goarch string
		caps   []string
		want   []string
	}{
		{"amd64", []string{"CAP_X"}, []string{"d", "g"}},
		{"amd64", []string{"CAP_X", "CAP_Y"}, []string{"a", "d", "g"}},
		{"amd64", []string{"CAP_Y"}, []string{"b", "d", "g"}},
		{"arm64", nil, []string{"b", "d", "f"}},
	} {
		r, err := resolve(p, target{goarch: tc.goarch, caps: tc.caps, kernel: kernel618})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, rule := range r.rules {
			got = append(got, rule.Names...)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %v: kept %v, want %v", tc.goarch, tc.caps, got, tc.want)
		}
	}
}
