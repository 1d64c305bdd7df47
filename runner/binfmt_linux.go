package runner

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// elfMachines are the ELF class (1: 32-bit, 2: 64-bit) and e_machine of
// each architecture's little-endian (big-endian for s390x) binaries: what a
// binfmt_misc handler's magic matches.
var elfMachines = map[string]struct {
	class   byte
	machine [2]byte
	qemu    string
}{
	"amd64":   {2, [2]byte{0x3e, 0x00}, "x86_64"},
	"386":     {1, [2]byte{0x03, 0x00}, "i386"},
	"arm64":   {2, [2]byte{0xb7, 0x00}, "aarch64"},
	"arm":     {1, [2]byte{0x28, 0x00}, "arm"},
	"riscv64": {2, [2]byte{0xf3, 0x00}, "riscv64"},
	"ppc64le": {2, [2]byte{0x15, 0x00}, "ppc64le"},
	"s390x":   {2, [2]byte{0x00, 0x16}, "s390x"},
}

// BinfmtDir is where the kernel shows binfmt_misc handlers.
const BinfmtDir = "/proc/sys/fs/binfmt_misc"

// CheckEmulator says whether binaries of architecture arch (GOARCH's names)
// can run on this machine: natively, or through a binfmt_misc handler
// registered with flag F (the interpreter opened at registration, so it
// works inside a sandbox's mount namespace, where its path does not exist).
// The error names the missing emulator and the command that registers one.
func CheckEmulator(arch string) error { return checkEmulatorIn(BinfmtDir, arch) }

func checkEmulatorIn(dir, arch string) error {
	if arch == "" || arch == runtime.GOARCH || (runtime.GOARCH == "amd64" && arch == "386") {
		return nil
	}
	m, ok := elfMachines[arch]
	if !ok {
		return fmt.Errorf("no emulator known for architecture %s", arch)
	}
	register := fmt.Sprintf("apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-%s", m.qemu)
	if _, err := os.Stat(filepath.Join(dir, "status")); err != nil {
		return fmt.Errorf("running linux/%s binaries needs binfmt_misc, which is not mounted (mount -t binfmt_misc binfmt_misc %s, then %s)", arch, dir, register)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read binfmt_misc handlers: %w", err)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "status")); err == nil && strings.TrimSpace(string(data)) != "enabled" {
		return fmt.Errorf("running linux/%s binaries needs binfmt_misc, which is disabled (echo 1 > %s/status)", arch, dir)
	}
	var withoutF string
	for _, e := range ents {
		if e.Name() == "status" || e.Name() == "register" {
			continue
		}
		h, err := readBinfmt(filepath.Join(dir, e.Name()))
		if err != nil || !h.enabled || !h.matchesELF(m.class, m.machine) {
			continue
		}
		if !strings.Contains(h.flags, "F") {
			withoutF = e.Name()
			continue
		}
		return nil
	}
	if withoutF != "" {
		return fmt.Errorf("the binfmt_misc handler %s for linux/%s was registered without flag F, so its interpreter cannot be found inside a sandbox (register it again with F: %s)", withoutF, arch, register)
	}
	return fmt.Errorf("no emulator for linux/%s binaries: no binfmt_misc handler is registered for %s ELF files (register one: %s)", arch, m.qemu, register)
}

type binfmtHandler struct {
	enabled     bool
	flags       string
	offset      int
	magic, mask []byte
}

func readBinfmt(path string) (binfmtHandler, error) {
	var h binfmtHandler
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return h, err
		}
		return h, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "enabled":
			h.enabled = true
		case "flags:":
			h.flags = v
		case "offset":
			fmt.Sscanf(v, "%d", &h.offset)
		case "magic":
			h.magic, _ = hex.DecodeString(v)
		case "mask":
			h.mask, _ = hex.DecodeString(v)
		}
	}
	return h, nil
}

// matchesELF reports whether the handler takes little-endian ELF
// executables of this class and machine.
func (h binfmtHandler) matchesELF(class byte, machine [2]byte) bool {
	hdr := make([]byte, 20)
	copy(hdr, "\x7fELF")
	hdr[4], hdr[5], hdr[6] = class, 1, 1
	if machine[0] == 0 { // big-endian (s390x)
		hdr[5] = 2
		hdr[16], hdr[17] = 0, 2
	} else {
		hdr[16], hdr[17] = 2, 0
	}
	hdr[18], hdr[19] = machine[0], machine[1]
	if h.offset != 0 || len(h.magic) == 0 || len(h.magic) > len(hdr) {
		return false
	}
	for i, b := range h.magic {
		mask := byte(0xff)
		if i < len(h.mask) {
			mask = h.mask[i]
		}
		if hdr[i]&mask != b&mask {
			return false
		}
	}
	return bytes.HasPrefix(h.magic, []byte("\x7fELF"))
}
