package archive

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
)

// SaveTempPrefix starts the name of the temp file SaveFile writes beside its
// target: ".kiln-save-<pid>-<random>".
const SaveTempPrefix = ".kiln-save-"

// SaveFile writes the archive of Save to path, atomically: into a temp file
// in path's directory, fsynced, then renamed over path. The temp file is
// removed when the save fails or ctx is cancelled (kiln cancels it on SIGINT
// and SIGTERM). A save killed outright (SIGKILL, power cut) leaves its temp
// file; the next SaveFile into the same directory removes it, and the store
// keeps a note of it meanwhile, so `kiln system check` reports it and GC
// removes it.
func SaveFile(ctx context.Context, s *cache.Store, path string, images []string, f Format) error {
	return writeSaveFile(ctx, s, path, func(w io.Writer) error { return Save(ctx, s, w, images, f) })
}

// writeSaveFile writes path atomically with save, as SaveFile describes.
func writeSaveFile(ctx context.Context, s *cache.Store, path string, save func(io.Writer) error) error {
	dir := filepath.Dir(path)
	RemoveStaleSaveTemps(dir)
	// The store notes the temp file before it exists: a save killed at any
	// moment leaves no temp file the store does not know of.
	name := saveTempName(dir)
	forget, err := s.NoteExternalTemp(name)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer forget()
	tmp, err := createSaveTemp(name)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := save(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save: write %s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	committed = true
	return tmp.Close() // releases the lock only now: the name is gone already
}

// saveTempName is a fresh ".kiln-save-<pid>-<random>" in dir.
func saveTempName(dir string) string {
	return filepath.Join(dir, SaveTempPrefix+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(uint64(rand.Uint32()), 10))
}

// createSaveTemp creates the temp file name (which must not exist) and locks
// it (flock LOCK_EX) for as long as this process has it open.
func createSaveTemp(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// RemoveStaleSaveTemps removes the temp files of killed saves from dir: those
// named by SaveTempPrefix whose lock no process holds and whose pid (in the
// name) is not alive. It returns the paths it removed.
func RemoveStaleSaveTemps(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), SaveTempPrefix) || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if StaleSaveTemp(p) && os.Remove(p) == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

// StaleSaveTemp reports whether p is the temp file of a save that is no
// longer running: no process holds its lock, and the pid in its name (when
// it has one) is not alive. The pid closes the moment between a save's
// creating the file and locking it.
func StaleSaveTemp(p string) bool {
	if !strings.HasPrefix(filepath.Base(p), SaveTempPrefix) {
		return false
	}
	rest := strings.TrimPrefix(filepath.Base(p), SaveTempPrefix)
	if pidStr, _, ok := strings.Cut(rest, "-"); ok {
		if pid, err := strconv.Atoi(pidStr); err == nil && pid > 0 {
			if err := unix.Kill(pid, 0); err == nil || err == unix.EPERM {
				return false
			}
		}
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}
