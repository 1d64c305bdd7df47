package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/kilntest"
	"golang.org/x/sys/unix"
)

func create(t *testing.T, s *Store, name string, mounts ...MountSpec) *Container {
	t.Helper()
	c, err := s.Create(Config{Name: name, Path: "true", HostConfig: HostConfig{Mounts: mounts}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStoreCreateGetRemove(t *testing.T) {
	s := NewStore(t.TempDir())
	a := create(t, s, "alpha")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(a.ID) || a.Name != "alpha" || a.State.Status != "created" {
		t.Errorf("created %+v", a)
	}
	if a.Config.Config.Hostname != a.ID[:12] {
		t.Errorf("hostname %q", a.Config.Config.Hostname)
	}
	for _, f := range []string{"config.json", "state.json", "hosts", "hostname", "resolv.conf", "upper", "work", "rootfs"} {
		if _, err := os.Stat(filepath.Join(a.Dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(a.Dir, "hostname")); string(data) != a.ID[:12]+"\n" {
		t.Errorf("/etc/hostname %q", data)
	}
	// A taken name creates nothing.
	if _, err := s.Create(Config{Name: "alpha", Path: "true"}); !errors.Is(err, ErrNameInUse) {
		t.Errorf("a taken name: %v", err)
	}
	if _, err := s.Create(Config{Name: "bad/name", Path: "true"}); err == nil {
		t.Errorf("a bad name was taken")
	}
	b := create(t, s, "")
	if !regexp.MustCompile(`^[a-z]+_[a-z]+[0-9]*$`).MatchString(b.Name) {
		t.Errorf("random name %q", b.Name)
	}
	if list, _ := s.List(); len(list) != 2 || list[0].ID != b.ID {
		t.Errorf("List: %d, newest first", len(list))
	}
	// Lookups: full ID, name with or without "/", unique prefix.
	for _, ref := range []string{a.ID, "alpha", "/alpha", a.ID[:12], a.ID[:5]} {
		if ref == a.ID[:5] && strings.HasPrefix(b.ID, ref) {
			continue
		}
		if c, err := s.Get(ref); err != nil || c.ID != a.ID {
			t.Errorf("Get(%q) = %v", ref, err)
		}
	}
	for _, ref := range []string{"", "nosuch", "ffffffffffffg"} {
		if _, err := s.Get(ref); !errors.Is(err, ErrNoSuchContainer) {
			t.Errorf("Get(%q): %v", ref, err)
		}
	}
	// Stopped containers: Kill says not running, Stop does nothing.
	if err := a.Kill("TERM"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Kill of a created container: %v", err)
	}
	if err := a.Stop(time.Second); err != nil {
		t.Errorf("Stop of a created container: %v", err)
	}
	if err := s.Remove(a, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("alpha"); !errors.Is(err, ErrNoSuchContainer) {
		t.Errorf("after Remove: %v", err)
	}
	if _, err := os.Stat(a.Dir); err == nil {
		t.Errorf("the directory is left")
	}
	create(t, s, "alpha") // the name is free again
}

// A container whose monitor is gone is exited, and the state says so.
func TestRefreshDeadMonitor(t *testing.T) {
	s := NewStore(t.TempDir())
	c := create(t, s, "ghost")
	c.State = State{Status: "running", Running: true, Pid: os.Getpid(), MonitorPid: os.Getpid(), MonitorStart: 1}
	if err := c.saveState(); err != nil {
		t.Fatal(err)
	}
	c, err := s.Get("ghost")
	if err != nil {
		t.Fatal(err)
	}
	if st := c.State; st.Running || st.Status != "exited" || st.ExitCode != 137 || st.Error != "container monitor died" || st.FinishedAt.IsZero() {
		t.Errorf("state %+v", st)
	}
}

func TestVolumesAndPrune(t *testing.T) {
	s := NewStore(t.TempDir())
	v, err := s.CreateVolume("data", map[string]string{"k": "v"})
	if err != nil || v.Name != "data" || v.Driver != "local" || v.Anonymous || v.Labels["k"] != "v" {
		t.Fatalf("CreateVolume: %+v, %v", v, err)
	}
	if again, err := s.CreateVolume("data", nil); err != nil || again.CreatedAt != v.CreatedAt {
		t.Errorf("creating an existing volume: %+v, %v", again, err)
	}
	if _, err := s.CreateVolume("-bad", nil); err == nil {
		t.Errorf("a bad volume name was taken")
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "f"), make([]byte, 100000), 0o644); err != nil {
		t.Fatal(err)
	}
	user := create(t, s, "user", MountSpec{Type: "volume", Source: "data", Target: "/d"}, MountSpec{Type: "volume", Target: "/anon"})
	anon := user.Mounts[1].Name
	if err := s.RemoveVolume("data"); !errors.Is(err, ErrVolumeInUse) {
		t.Errorf("removing a volume in use: %v", err)
	}
	if err := s.RemoveVolume("nosuch"); !errors.Is(err, ErrNoSuchVolume) {
		t.Errorf("removing a missing volume: %v", err)
	}
	u, err := s.DiskUsage()
	if err != nil || u.Containers != 1 || u.RunningContainers != 0 || u.Volumes != 2 || u.UsedVolumes != 2 || u.VolumesReclaimable != 0 || u.VolumesSize < 100000 {
		t.Errorf("DiskUsage %+v, %v", u, err)
	}
	if res, err := s.PruneVolumes(true); err != nil || len(res.Removed) != 0 {
		t.Errorf("pruned volumes in use: %+v, %v", res, err)
	}
	// The container goes (its anonymous volume stays, as docker's prune).
	res, err := s.PruneContainers(time.Time{})
	if err != nil || len(res.Removed) != 1 || res.Freed <= 0 {
		t.Errorf("PruneContainers: %+v, %v", res, err)
	}
	res, err = s.PruneVolumes(false)
	if err != nil || len(res.Removed) != 1 || res.Removed[0] != anon {
		t.Errorf("PruneVolumes: %+v, %v", res, err)
	}
	size := cache.SpaceOnDisk(filepath.Join(s.volumesDir(), "data"))
	res, err = s.PruneVolumes(true)
	if err != nil || len(res.Removed) != 1 || res.Removed[0] != "data" || res.Freed != size || size < 100000 {
		t.Errorf("PruneVolumes -a: %+v (size %d), %v", res, size, err)
	}
	if vs, _ := s.Volumes(); len(vs) != 0 {
		t.Errorf("volumes left: %+v", vs)
	}
}

func TestRemoveWithVolumes(t *testing.T) {
	s := NewStore(t.TempDir())
	a := create(t, s, "a", MountSpec{Type: "volume", Target: "/anon"}, MountSpec{Type: "volume", Source: "named", Target: "/n"})
	if err := s.Remove(a, false, true); err != nil {
		t.Fatal(err)
	}
	vs, _ := s.Volumes()
	if len(vs) != 1 || vs[0].Name != "named" {
		t.Errorf("rm -v keeps named volumes only: %+v", vs)
	}
}

// TestRemoveVolumeTrash: a removed volume leaves the volumes directory in
// one rename into the store's trash, whose deleter empties it; nothing of
// it stays beside the other volumes, and a kept volume is untouched.
func TestRemoveVolumeTrash(t *testing.T) {
	root := t.TempDir()
	s := NewStore(root)
	for _, name := range []string{"big", "kept"} {
		v, err := s.CreateVolume(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		// More entries than the trash removes at once: a deleter's work.
		for i := range 100 {
			if err := os.WriteFile(filepath.Join(v.Mountpoint, fmt.Sprint(i)), []byte("x"), 0o400); err != nil {
				t.Fatal(err)
			}
		}
	}
	// a read-only directory, as a container may leave one
	if err := os.Chmod(filepath.Join(s.volumesDir(), "big", "_data"), 0o500); err != nil {
		t.Fatal(err)
	}
	// The trash's lock held as a deleter holds it: no deleter starts, and
	// rm must return all the same, with the volume's files in the trash.
	lock, err := os.OpenFile(filepath.Join(root, "trash.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveVolume("big"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Volume("big"); !errors.Is(err, ErrNoSuchVolume) {
		t.Errorf("removed volume: %v", err)
	}
	if names := kilntest.DirNames(t, s.volumesDir()); len(names) != 1 || names[0] != "kept" {
		t.Errorf("volumes directory after rm: %v", names)
	}
	trash := filepath.Join(root, "trash")
	if names := kilntest.DirNames(t, trash); len(names) != 1 {
		t.Errorf("trash after rm: %v", names)
	} else if files := kilntest.DirNames(t, filepath.Join(trash, names[0], "x", "_data")); len(files) != 100 {
		t.Errorf("the trashed volume holds %d files", len(files))
	}
	lock.Close()
	if err := cache.WaitTrash(root); err != nil {
		t.Fatal(err)
	}
	if names := kilntest.DirNames(t, trash); len(names) != 0 {
		t.Errorf("trash not emptied: %v", names)
	}
	v, err := s.Volume("kept")
	if err != nil {
		t.Fatal(err)
	}
	if files, _ := os.ReadDir(v.Mountpoint); len(files) != 100 {
		t.Errorf("kept volume has %d files", len(files))
	}
}
