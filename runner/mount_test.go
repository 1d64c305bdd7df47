package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/kilntest"
)

func TestOverlayMount(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lowers []string
		want   Mount
	}{
		{
			name:   "one lower",
			lowers: []string{"/l1"},
			want: Mount{Type: "overlay", Source: "overlay", Target: "/m", Options: []string{
				"index=off", "redirect_dir=off", "metacopy=off", "lowerdir+=/l1", "upperdir=/u", "workdir=/w"}},
		},
		{
			name:   "top-most first, odd characters kept",
			lowers: []string{"/top", "/mid:1", "/bottom,x"},
			want: Mount{Type: "overlay", Source: "overlay", Target: "/m", Options: []string{
				"index=off", "redirect_dir=off", "metacopy=off",
				"lowerdir+=/top", "lowerdir+=/mid:1", "lowerdir+=/bottom,x", "upperdir=/u", "workdir=/w"}},
		},
		{
			name: "scratch: bind of upper",
			want: Mount{Type: "bind", Source: "/u", Target: "/m", Options: []string{"bind"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := OverlayMount("/m", tc.lowers, "/u", "/w"); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestOverlayOptions(t *testing.T) {
	lowers, rest := overlayOptions([]string{"index=off", `lowerdir=/a\:b:/c`, "lowerdir+=/d", "upperdir=/u", "ro"})
	if want := []string{"/a:b", "/c", "/d"}; !reflect.DeepEqual(lowers, want) {
		t.Fatalf("lowers %q, want %q", lowers, want)
	}
	if want := []string{"index=off", "upperdir=/u", "ro"}; !reflect.DeepEqual(rest, want) {
		t.Fatalf("rest %q, want %q", rest, want)
	}
}

func TestOverlayData(t *testing.T) {
	long := make([]string, 300)
	for i := range long {
		long[i] = fmt.Sprintf("/var/lib/kiln/snapshots/%04d/fs", i)
	}
	for _, tc := range []struct {
		name    string
		lowers  []string
		data    []string
		want    string
		wantErr error
		errText string
	}{
		{name: "simple", lowers: []string{"/a", "/b"}, data: []string{"upperdir=/u", "workdir=/w", "index=off"},
			want: "lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off"},
		{name: "escapes colon and backslash", lowers: []string{`/a:1`, `/b\2`}, want: `lowerdir=/a\:1:/b\\2`},
		{name: "comma", lowers: []string{"/a,b"}, errText: "contains a comma"},
		{name: "comma in upper", lowers: []string{"/a"}, data: []string{"upperdir=/u,x"}, errText: "contains a comma"},
		{name: "no lowers", errText: "at least one lowerdir"},
		{name: "too long", lowers: long, wantErr: ErrOverlayOptionsTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := overlayData(tc.lowers, tc.data, 4096)
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
			case tc.errText != "":
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err %v, want %q", err, tc.errText)
				}
			case err != nil || got != tc.want:
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseMountOptions(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want mountOpts
	}{
		{nil, mountOpts{}},
		{[]string{"ro", "nosuid", "nodev", "noexec"}, mountOpts{
			flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC,
			attrs: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}},
		{[]string{"ro", "rw"}, mountOpts{}},
		{[]string{"rbind", "rprivate", "mode=755", "size=1m"}, mountOpts{
			flags: unix.MS_BIND | unix.MS_REC, propagation: unix.MS_PRIVATE | unix.MS_REC, data: []string{"mode=755", "size=1m"}}},
		{[]string{"index=off", "lowerdir+=/x", "strictatime"}, mountOpts{
			flags: unix.MS_STRICTATIME, attrs: unix.MOUNT_ATTR_STRICTATIME, data: []string{"index=off", "lowerdir+=/x"}}},
	} {
		if got := parseMountOptions(tc.opts); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseMountOptions(%q) = %+v, want %+v", tc.opts, got, tc.want)
		}
	}
}

// overlayDirs makes n lowers (lowers[i]/level holds i; lowers[n-1] also has
// bottom.txt) plus upper, work and a mount point.
func overlayDirs(t *testing.T, n int) (lowers []string, upper, work, target string) {
	kilntest.RequireRoot(t)
	base := t.TempDir()
	t.Cleanup(func() { assertClean(t, base) })
	for i := range n {
		l := filepath.Join(base, fmt.Sprintf("l%03d", i))
		if err := os.Mkdir(l, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, "level"), []byte(fmt.Sprint(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, l)
	}
	if err := os.WriteFile(filepath.Join(lowers[n-1], "bottom.txt"), []byte("bottom"), 0o644); err != nil {
		t.Fatal(err)
	}
	upper, work, target = filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, target} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return lowers, upper, work, target
}

func checkMerged(t *testing.T, target string) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(target, "bottom.txt")); err != nil || string(b) != "bottom" {
		t.Fatalf("bottom.txt: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(target, "level")); err != nil || string(b) != "0" {
		t.Fatalf("level (top-most wins): %q, %v", b, err)
	}
}

func TestMountOverlayManyLowers(t *testing.T) {
	lowers, upper, work, target := overlayDirs(t, 200)
	m := OverlayMount(target, lowers, upper, work)
	l, rest := overlayOptions(m.Options)
	if _, err := overlayData(l, rest, os.Getpagesize()); !errors.Is(err, ErrOverlayOptionsTooLong) {
		t.Fatalf("test needs more lowers than one page holds: %v", err)
	}
	if err := MountOverlay(m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unmount(target); err != nil {
			t.Error(err)
		}
	})
	checkMerged(t, target)
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "new")); err != nil {
		t.Fatalf("write did not land in upper: %v", err)
	}
}

func TestMountOverlayClassic(t *testing.T) {
	lowers, upper, work, target := overlayDirs(t, 3)
	lowers2, rest := overlayOptions(OverlayMount(target, lowers, upper, work).Options)
	if err := mountOverlayClassic(target, lowers2, parseMountOptions(rest), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unmount(target); err != nil {
			t.Error(err)
		}
	})
	checkMerged(t, target)
}

func TestMountOverlayGeneric(t *testing.T) {
	kilntest.RequireRoot(t)
	base := t.TempDir()
	t.Cleanup(func() { assertClean(t, base) })
	src, ro, tmp := filepath.Join(base, "src"), filepath.Join(base, "ro"), filepath.Join(base, "tmp")
	for _, d := range []string{src, ro, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := MountOverlay(Mount{Type: "bind", Source: src, Target: ro, Options: []string{"ro", "nosuid"}}); err != nil {
		t.Fatal(err)
	}
	defer Unmount(ro)
	if b, err := os.ReadFile(filepath.Join(ro, "f")); err != nil || string(b) != "x" {
		t.Fatalf("bind: %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(ro, "g"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to ro bind: %v, want EROFS", err)
	}
	if err := MountOverlay(Mount{Type: "tmpfs", Source: "tmpfs", Target: tmp, Options: []string{"mode=700", "size=1m"}}); err != nil {
		t.Fatal(err)
	}
	defer Unmount(tmp)
	var st unix.Statfs_t
	if err := unix.Statfs(tmp, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		t.Fatalf("tmpfs: type %x, %v", st.Type, err)
	}
	if fi, _ := os.Stat(tmp); fi.Mode().Perm() != 0o700 {
		t.Fatalf("tmpfs mode %v", fi.Mode())
	}
	if err := MountOverlay(Mount{Type: "tmpfs", Target: filepath.Join(base, "missing")}); err == nil ||
		!strings.Contains(err.Error(), "mount tmpfs on") {
		t.Fatalf("mount on a missing dir: %v", err)
	}
}

func TestUserxattrOptions(t *testing.T) {
	got := userxattrOptions([]string{"index=off", "redirect_dir=off", "metacopy=off", "userxattr", "upperdir=/u"})
	want := []string{"index=off", "redirect_dir=nofollow", "metacopy=off", "upperdir=/u", "userxattr"}
	if !slices.Equal(got, want) {
		t.Errorf("userxattrOptions = %q, want %q", got, want)
	}
}

func TestMountVolatile(t *testing.T) {
	o := OverlayMount("/m", []string{"/l"}, "/u", "/w")
	v := o.Volatile()
	if want := append(slices.Clone(o.Options), "volatile"); !reflect.DeepEqual(v.Options, want) {
		t.Fatalf("volatile options %q, want %q", v.Options, want)
	}
	if slices.Contains(o.Options, "volatile") || len(o.Volatile().Options) != len(v.Options) {
		t.Fatalf("Volatile changed its receiver's options: %q", o.Options)
	}
	if b := OverlayMount("/m", nil, "/u", "/w"); !reflect.DeepEqual(b.Volatile(), b) {
		t.Fatalf("a bind mount (scratch) got overlay options: %#v", b.Volatile())
	}
}

// TestMountOverlayVolatile mounts volatile overlays with both mount APIs:
// the kernel takes the option (mountinfo shows it, and overlayfs leaves its
// marker in the workdir), and writes land in upper as without it.
func TestMountOverlayVolatile(t *testing.T) {
	for _, api := range []string{"new", "classic"} {
		t.Run(api, func(t *testing.T) {
			lowers, upper, work, target := overlayDirs(t, 2)
			m := OverlayMount(target, lowers, upper, work).Volatile()
			var err error
			if api == "new" {
				err = MountOverlay(m)
			} else {
				l, rest := overlayOptions(m.Options)
				err = mountOverlayClassic(target, l, parseMountOptions(rest), nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			mounted := true
			t.Cleanup(func() {
				if mounted {
					Unmount(target)
				}
			})
			info, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			var super string
			for _, line := range strings.Split(string(info), "\n") {
				f := strings.Fields(line)
				if len(f) > 4 && f[4] == target {
					if _, after, ok := strings.Cut(line, " - "); ok {
						super = after
					}
				}
			}
			// "fsync=volatile" since 6.6, ",volatile" before
			if !strings.Contains(super, "volatile") {
				t.Fatalf("mountinfo of %s: %q, want the volatile option", target, super)
			}
			checkMerged(t, target)
			if err := os.WriteFile(filepath.Join(target, "new"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := Unmount(target); err != nil {
				t.Fatal(err)
			}
			mounted = false
			if b, err := os.ReadFile(filepath.Join(upper, "new")); err != nil || string(b) != "x" {
				t.Fatalf("write did not land in upper: %q, %v", b, err)
			}
			if _, err := os.Stat(filepath.Join(work, "work", "incompat", "volatile")); err != nil {
				t.Fatalf("overlayfs's volatile marker: %v", err)
			}
		})
	}
}
