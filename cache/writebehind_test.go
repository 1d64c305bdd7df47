package cache

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loopFS mounts a fresh ext4 filesystem of the test's own (a loop device,
// direct I/O, over an image in a temporary directory) and returns where,
// and what gives the bytes written to its device so far: what the
// filesystem sent to the disk, whatever the page cache still holds.
func loopFS(t *testing.T) (dir string, written func() int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop devices and mounts")
	}
	for _, tool := range []string{"mkfs.ext4", "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	tmp := t.TempDir()
	img, dir := filepath.Join(tmp, "img"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 512<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	out, err := exec.Command("losetup", "--direct-io=on", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	if err := unix.Mount(dev, dir, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	stat := filepath.Join("/sys/block", filepath.Base(dev), "stat")
	return dir, func() int64 {
		t.Helper()
		b, err := os.ReadFile(stat)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		sectors, err := strconv.ParseInt(f[6], 10, 64) // sectors written
		if err != nil {
			t.Fatalf("%s: %q: %v", stat, b, err)
		}
		return sectors * 512
	}
}

// openLoopStore opens a store on a filesystem of its own (loopFS).
func openLoopStore(t *testing.T) (*Store, func() int64) {
	t.Helper()
	dir, written := loopFS(t)
	s, err := Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() }) // before the unmount
	return s, written
}

// appendData appends n bytes to name: dirty pages, not yet written.
func appendData(t *testing.T, name string, n int) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("kiln"), 1<<18) // 1 MiB
	for ; n > 0; n -= len(chunk) {
		if _, err := f.Write(chunk[:min(n, len(chunk))]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteBehind: while a snapshot is being filled, its filesystem is
// synced only once writeBehindBytes more of it is used, and then the data
// is on the disk (the device has written it) before any commit.
func TestWriteBehind(t *testing.T) {
	s, written := openLoopStore(t)
	sn, err := s.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Discard()
	fd, err := unix.Open(sn.tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ticks, done, ended := make(chan time.Time), make(chan struct{}), make(chan struct{})
	synced := make(chan error, 10)
	go func() {
		defer close(ended)
		writeBehind(fd, done, ticks, func(fd int) error {
			err := unix.Syncfs(fd)
			synced <- err
			return err
		})
	}()
	// The loop takes a tick only once it is done with the last one.
	tick := func() { ticks <- time.Now(); ticks <- time.Now() }

	data := filepath.Join(sn.Dir, "data")
	appendData(t, data, writeBehindBytes/4)
	tick()
	if len(synced) != 0 {
		t.Fatalf("synced after %d bytes, fewer than %d", writeBehindBytes/4, writeBehindBytes)
	}
	before := written()
	appendData(t, data, writeBehindBytes)
	tick()
	if len(synced) != 1 {
		t.Fatalf("%d syncs after %d bytes, want 1", len(synced), writeBehindBytes*5/4)
	}
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if got := written() - before; got < writeBehindBytes {
		t.Fatalf("the device wrote %d bytes after the write-behind sync, want at least %d", got, writeBehindBytes)
	}
	tick() // nothing new
	if len(synced) != 0 {
		t.Fatal("synced again with nothing new written")
	}
	close(done)
	<-ended
}

// TestCommitSyncsNewLayer: a new layer's data is on the disk when Commit
// returns, before anything can refer to the layer.
func TestCommitSyncsNewLayer(t *testing.T) {
	s, written := openLoopStore(t)
	sn, err := s.NewSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	appendData(t, filepath.Join(sn.Dir, "data"), size)
	before := written()
	l, err := s.CommitDiff(context.Background(), sn)
	if err != nil {
		t.Fatal(err)
	}
	if got := written() - before; got < size {
		t.Fatalf("the device wrote %d bytes for the commit of a %d-byte layer", got, size)
	}
	snapshotDigestOK(t, s, l)
}
