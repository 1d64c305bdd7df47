package layer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestChanges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: whiteouts are character devices, opaque directories trusted xattrs")
	}
	base := t.TempDir()
	lower, upper := filepath.Join(base, "lower"), filepath.Join(base, "upper")
	write := func(root, p, data string) {
		t.Helper()
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"/etc/passwd", "/bin/a", "/bin/b", "/keep/x", "/opq/y", "/gone/deep/f"} {
		write(lower, p, "image")
	}
	write(upper, "/etc/passwd", "changed")
	write(upper, "/etc/hosts", "")      // a mount point
	write(upper, "/data/vol/.keep", "") // below a volume's mount point, in a directory made for it
	write(upper, "/new/file", "new")
	write(upper, "/opq/z", "new")
	if err := os.MkdirAll(filepath.Join(upper, "keep"), 0o755); err != nil { // copied up, unchanged
		t.Fatal(err)
	}
	for _, w := range []string{"/bin/a", "/gone", "/never-was"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(upper, w)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(upper, w), unix.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Setxattr(filepath.Join(upper, "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("trusted xattrs: %v", err)
	}
	got, err := Changes(upper, []string{lower}, []string{"/etc/hosts", "/data/vol"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, c := range got {
		lines = append(lines, c.String())
	}
	want := "C /bin\nD /bin/a\nC /etc\nC /etc/passwd\nD /gone\nA /new\nA /new/file\nC /opq\nD /opq/y\nA /opq/z"
	if strings.Join(lines, "\n") != want {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(lines, "\n"), want)
	}
}
