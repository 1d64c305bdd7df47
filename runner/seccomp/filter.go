package seccomp

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"golang.org/x/sys/unix"
)

// Filter is a compiled seccomp filter. It is plain data: the parent compiles
// it, the sandbox init receives it as JSON and installs it. The zero Filter
// installs nothing.
type Filter struct {
	Flags   uint              // SECCOMP_FILTER_FLAG_* from the profile's flags
	Program []unix.SockFilter // classic BPF over struct seccomp_data
}

// filterJSON is Filter's JSON form: the program as base64 of its 8-byte
// instructions (code, jt, jf, k; little-endian), about a third of the size of
// a JSON array of objects and much quicker to decode.
type filterJSON struct {
	Flags   uint   `json:"flags,omitempty"`
	Program []byte `json:"program,omitempty"`
}

func (f Filter) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 8*len(f.Program))
	for _, in := range f.Program {
		b = binary.LittleEndian.AppendUint16(b, in.Code)
		b = append(b, in.Jt, in.Jf)
		b = binary.LittleEndian.AppendUint32(b, in.K)
	}
	return json.Marshal(filterJSON{Flags: f.Flags, Program: b})
}

func (f *Filter) UnmarshalJSON(data []byte) error {
	var j filterJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("decode seccomp filter: %w", err)
	}
	if len(j.Program)%8 != 0 {
		return fmt.Errorf("decode seccomp filter: program of %d bytes is not made of 8-byte instructions", len(j.Program))
	}
	f.Flags, f.Program = j.Flags, nil
	if len(j.Program) > 0 {
		f.Program = make([]unix.SockFilter, len(j.Program)/8)
	}
	for i := range f.Program {
		b := j.Program[8*i:]
		f.Program[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	return nil
}
