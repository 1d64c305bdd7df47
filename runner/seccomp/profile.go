package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Profile is a seccomp profile in Docker's JSON format: defaultAction,
// defaultErrnoRet, architectures or archMap, flags, and syscalls with names,
// action, errnoRet, args and includes/excludes conditions on capabilities,
// architectures and the kernel version.
type Profile = mobyseccomp.Seccomp

// ErrInvalid is wrapped by the errors of Load and Compile about a profile's
// content.
var ErrInvalid = errors.New("invalid seccomp profile")

// Default returns Docker's default profile (a new copy on each call).
func Default() *Profile {
	return mobyseccomp.DefaultProfile()
}

// Load reads a profile in Docker's JSON format, as docker run --security-opt
// seccomp=FILE does, and checks that kiln can apply it: an error names the
// JSON line or the syscalls entry at fault.
func Load(data []byte) (*Profile, error) {
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, fmt.Errorf("%w: line %d: %v", ErrInvalid, lineOf(data, syn.Offset), err)
		case errors.As(err, &typ):
			return nil, fmt.Errorf("%w: line %d: %s: %v", ErrInvalid, lineOf(data, typ.Offset), typ.Field, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := validate(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

func lineOf(data []byte, offset int64) int {
	line := 1
	for i := int64(0); i < offset && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
		}
	}
	return line
}

// validate checks everything of p that does not depend on the capabilities,
// the architecture or the kernel.
func validate(p *Profile) error {
	if len(p.Architectures) != 0 && len(p.ArchMap) != 0 {
		return fmt.Errorf("%w: both architectures and archMap are given, use one", ErrInvalid)
	}
	if len(p.LinuxSeccomp.Syscalls) != 0 {
		return fmt.Errorf("%w: LinuxSeccomp.Syscalls must be empty (rules go in Syscalls)", ErrInvalid)
	}
	if p.ListenerPath != "" || p.ListenerMetadata != "" {
		return fmt.Errorf("%w: listenerPath: seccomp user notification is not supported", ErrInvalid)
	}
	if p.DefaultAction == "" {
		if len(p.Syscalls) != 0 {
			return fmt.Errorf("%w: defaultAction is missing", ErrInvalid)
		}
		return nil // Docker's "no filter"
	}
	if _, err := action(p.DefaultAction, p.DefaultErrnoRet); err != nil {
		return fmt.Errorf("%w: defaultAction: %v", ErrInvalid, err)
	}
	if _, err := filterFlags(p.Flags); err != nil {
		return err
	}
	for _, a := range p.Architectures {
		if !knownArch(a) {
			return fmt.Errorf("%w: architectures: unknown architecture %q", ErrInvalid, a)
		}
	}
	for _, m := range p.ArchMap {
		for _, a := range append([]specs.Arch{m.Arch}, m.SubArches...) {
			if !knownArch(a) {
				return fmt.Errorf("%w: archMap: unknown architecture %q", ErrInvalid, a)
			}
		}
	}
	for i, call := range p.Syscalls {
		if call == nil {
			return fmt.Errorf("%w: syscalls[%d] is null", ErrInvalid, i)
		}
		where := func() string { // names the entry in an error
			if call.Name != "" {
				return fmt.Sprintf("syscalls[%d] [%s]", i, call.Name)
			}
			return fmt.Sprintf("syscalls[%d] %v", i, call.Names)
		}
		if call.Name != "" && len(call.Names) != 0 {
			return fmt.Errorf("%w: syscalls[%d]: both name and names are given, use one", ErrInvalid, i)
		}
		if call.Name == "" && len(call.Names) == 0 {
			return fmt.Errorf("%w: syscalls[%d]: no names", ErrInvalid, i)
		}
		if _, err := action(call.Action, call.ErrnoRet); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, where(), err)
		}
		for j, arg := range call.Args {
			if arg.Index > 5 {
				return fmt.Errorf("%w: %s: args[%d]: index %d is not an argument (0 to 5)", ErrInvalid, where(), j, arg.Index)
			}
			if !knownOp(arg.Op) {
				return fmt.Errorf("%w: %s: args[%d]: unknown op %q", ErrInvalid, where(), j, arg.Op)
			}
		}
	}
	return nil
}

// knownArch says whether a is an architecture libseccomp knows, whether or
// not kiln can run it: a profile may list foreign ones, as Docker's does.
func knownArch(a specs.Arch) bool {
	switch a {
	case specs.ArchX86, specs.ArchX86_64, specs.ArchX32, specs.ArchARM, specs.ArchAARCH64,
		specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32, specs.ArchMIPSEL, specs.ArchMIPSEL64,
		specs.ArchMIPSEL64N32, specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE, specs.ArchS390,
		specs.ArchS390X, specs.ArchPARISC, specs.ArchPARISC64, specs.ArchRISCV64, specs.ArchLOONGARCH64,
		specs.ArchM68K, specs.ArchSH, specs.ArchSHEB:
		return true
	}
	return false
}

func knownOp(op specs.LinuxSeccompOperator) bool {
	switch op {
	case specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual:
		return true
	}
	return false
}
