package seccomp

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{"{\n \"defaultAction\": \"SCMP_ACT_ERRNO\",\n \"syscalls\": [\n}", "line 4"},
		{`{"defaultAction": 7}`, "defaultAction"},
		{`{"defaultAction": "SCMP_ACT_DENY"}`, `defaultAction: unknown action "SCMP_ACT_DENY"`},
		{`{"syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}`, "defaultAction is missing"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_PERMIT"}]}`, `syscalls[0] [getpid]: unknown action "SCMP_ACT_PERMIT"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BETWEEN"}]}]}`, `syscalls[1] [socket]: args[0]: unknown op "SCMP_CMP_BETWEEN"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`, "index 6 is not an argument"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}`, "errnoRet is only valid with"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}`, "not supported"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}`, "both name and names"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}`, "no names"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_Z80"]}`, `unknown architecture "SCMP_ARCH_Z80"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`, "both architectures and archMap"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_FAST"]}`, `unknown flag "SECCOMP_FILTER_FLAG_FAST"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}`, "listenerPath"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6"}}]}`, "invalid kernel version"},
	} {
		_, err := Load([]byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Load(%s): error %v, want one saying %q and wrapping ErrInvalid", tc.json, err, tc.want)
		}
	}
}

func TestLoadDefaultRoundTrip(t *testing.T) {
	data, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	a, b := compile(t, p, dockerCaps), compile(t, Default(), dockerCaps)
	if len(a.Program) == 0 || !slices.Equal(a.Program, b.Program) {
		t.Fatal("Docker's profile read back from JSON compiles to another program")
	}
}

func TestEmptyProfileIsNoFilter(t *testing.T) {
	p, err := Load([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if f := compile(t, p, nil); len(f.Program) != 0 {
		t.Fatalf("empty profile compiles to %d instructions", len(f.Program))
	}
}

func TestConflictingRules(t *testing.T) {
	p, err := Load([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
		{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}, {"names": ["getpid"], "action": "SCMP_ACT_KILL"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(p, nil); err == nil || !strings.Contains(err.Error(), "getpid") {
		t.Fatalf("conflicting rules compile: %v", err)
	}
}

// FuzzLoad: Load and Compile never panic, and what they accept assembles.
func FuzzLoad(f *testing.F) {
	def, _ := json.Marshal(Default())
	f.Add(def)
	f.Add([]byte(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [{"index": 1, "value": 4, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load(data)
		if err != nil {
			return
		}
		Compile(p, dockerCaps)
	})
}
