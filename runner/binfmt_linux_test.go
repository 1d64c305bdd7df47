package runner

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestCheckEmulator reads binfmt_misc directories as the kernel shows them
// (the handler below is Debian qemu-user-static's, as /proc shows it): a
// handler with F serves, one without F or none at all is a clear error
// naming the architecture and the command that registers one.
func TestCheckEmulator(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skipf("the table below is for an amd64 host, this is %s", runtime.GOARCH)
	}
	const aarch64 = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: %s\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n"
	write := func(files map[string]string) string {
		dir := t.TempDir()
		for n, c := range files {
			if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	for _, c := range []struct {
		name  string
		files map[string]string
		arch  string
		want  string // "" for no error, else part of the error
	}{
		{"native", nil, "amd64", ""},
		{"not mounted", nil, "arm64", "binfmt_misc, which is not mounted"},
		{"no handler", map[string]string{"status": "enabled\n", "register": ""}, "arm64", "no binfmt_misc handler is registered for aarch64 ELF files (register one: apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-aarch64)"},
		{"without F", map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(aarch64, "%s", "P", 1)}, "arm64", "registered without flag F"},
		{"with F", map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(aarch64, "%s", "PF", 1)}, "arm64", ""},
		{"other architecture", map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(aarch64, "%s", "PF", 1)}, "riscv64", "no emulator for linux/riscv64"},
		{"disabled handler", map[string]string{"status": "enabled\n", "qemu-aarch64": strings.Replace(strings.Replace(aarch64, "%s", "PF", 1), "enabled", "disabled", 1)}, "arm64", "no binfmt_misc handler"},
		{"binfmt_misc disabled", map[string]string{"status": "disabled\n", "qemu-aarch64": strings.Replace(aarch64, "%s", "PF", 1)}, "arm64", "which is disabled"},
	} {
		dir := filepath.Join(t.TempDir(), "none")
		if c.files != nil {
			dir = write(c.files)
		}
		err := checkEmulatorIn(dir, c.arch)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
