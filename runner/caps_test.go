package runner

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNormalizeCapability(t *testing.T) {
	for in, want := range map[string]string{
		"net_admin": "CAP_NET_ADMIN", "CAP_CHOWN": "CAP_CHOWN", " cap_kill ": "CAP_KILL", "all": "ALL", "ALL": "ALL",
	} {
		if got := NormalizeCapability(in); got != want {
			t.Errorf("NormalizeCapability(%q) = %q, want %q", in, got, want)
		}
	}
}

// capMask is the capability set as /proc/<pid>/status prints it.
func capMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		if n, ok := capabilityNumber(c); ok {
			m |= 1 << n
		}
	}
	return m
}

func TestCapabilityNumbers(t *testing.T) {
	// The kernel's numbering (linux/capability.h).
	for name, n := range map[string]int{"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21,
		"CAP_MKNOD": 27, "CAP_SETFCAP": 31, "CAP_AUDIT_READ": 37, "CAP_CHECKPOINT_RESTORE": 40} {
		if got, ok := capabilityNumber(name); !ok || got != n {
			t.Errorf("%s = %d, want %d", name, got, n)
		}
	}
	// Docker's default set is CapEff 00000000a80425fb.
	if m := capMask(DefaultCapabilities); m != 0xa80425fb {
		t.Errorf("default capabilities %x", m)
	}
}

func TestCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name      string
		add, drop []string
		want      uint64
		err       error
	}{
		{"default", nil, nil, 0xa80425fb, nil},
		{"add one", []string{"net_admin"}, nil, 0xa80425fb | 1<<12, nil},
		{"drop one", nil, []string{"CAP_CHOWN"}, 0xa80425fb &^ 1, nil},
		{"drop all, add one", []string{"NET_ADMIN"}, []string{"ALL"}, 1 << 12, nil},
		{"drop all", nil, []string{"all"}, 0, nil},
		{"add all", []string{"ALL"}, nil, 1<<len(capabilityNames) - 1, nil},
		{"add all, drop one", []string{"ALL"}, []string{"SYS_ADMIN"}, (1<<len(capabilityNames) - 1) &^ (1 << 21), nil},
		{"added and dropped stays", []string{"KILL"}, []string{"KILL"}, 0xa80425fb, nil},
		{"unknown add", []string{"CAP_NOPE"}, nil, 0, ErrUnknownCapability},
		{"unknown drop", nil, []string{"nope"}, 0, ErrUnknownCapability},
	} {
		got, err := Capabilities(nil, tc.add, tc.drop)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || capMask(got) != tc.want {
			t.Errorf("%s: %x (%v), %v; want %x", tc.name, capMask(got), got, err, tc.want)
		}
		if slices.ContainsFunc(got, func(c string) bool { return !strings.HasPrefix(c, "CAP_") }) {
			t.Errorf("%s: names not normalized: %v", tc.name, got)
		}
	}
	// A base other than docker's.
	if got, _ := Capabilities([]string{"CAP_CHOWN"}, []string{"CAP_KILL"}, nil); capMask(got) != 1|1<<5 {
		t.Errorf("own base: %v", got)
	}
	// The result never aliases DefaultCapabilities.
	got, _ := Capabilities(nil, nil, []string{"CAP_CHOWN"})
	got = append(got[:0], "CAP_SYS_ADMIN")
	if DefaultCapabilities[0] != "CAP_CHOWN" {
		t.Errorf("Capabilities changed DefaultCapabilities: %v", DefaultCapabilities)
	}
}
