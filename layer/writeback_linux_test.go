package layer

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteDiffWriteback: with DiffOptions.Writeback the differ starts the
// write-back of each file of at least writebackMin bytes (a real
// sync_file_range, which succeeds), of no smaller file, and writes the
// same tar as without.
func TestWriteDiffWriteback(t *testing.T) {
	dir := t.TempDir()
	// "a-small" comes first: had it been queued, the goroutine would have
	// started it before the large file.
	writeFile(t, dir, "a-small", "small\n")
	writeFile(t, dir, "b-large", string(bytes.Repeat([]byte("x"), writebackMin)))
	var large unix.Stat_t
	must(t, unix.Stat(filepath.Join(dir, "b-large"), &large))

	type call struct {
		ino uint64
		err error
	}
	calls := make(chan call, 2)
	syncFileRange = func(fd int, off, n int64, flags int) error {
		var st unix.Stat_t
		err := unix.Fstat(fd, &st)
		if err == nil {
			err = unix.SyncFileRange(fd, off, n, flags)
		}
		calls <- call{st.Ino, err}
		return err
	}
	t.Cleanup(func() { syncFileRange = unix.SyncFileRange })

	var plain, withWB bytes.Buffer
	must(t, WriteDiff(context.Background(), &plain, dir, DiffOptions{}))
	if len(calls) != 0 {
		t.Fatal("write-back started without DiffOptions.Writeback")
	}
	must(t, WriteDiff(context.Background(), &withWB, dir, DiffOptions{Writeback: true}))
	if !bytes.Equal(plain.Bytes(), withWB.Bytes()) {
		t.Fatal("the tar with Writeback differs from the one without")
	}
	c := <-calls
	if c.err != nil || c.ino != large.Ino {
		t.Fatalf("write-back started for inode %d (err %v), want only %d (b-large)", c.ino, c.err, large.Ino)
	}
}
