package network

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/proc"
	"github.com/kiln-build/kiln/internal/rootless"
)

// A network outlives its last endpoint by the config's teardown delay, so
// that containers run back to back find it up. What takes it down then is
// a reaper: this same binary re-executed (see IsReaper), detached, which
// sleeps until the store's idle networks are due and takes them down under
// the store's lock, unless a container attached meanwhile.
//
// One reaper at a time serves a store: it holds <store>/networks/reaper.lock
// from its start until its last look at the networks, which it takes, as
// every attach and detach does, under the store's lock. A detach that idles
// a network (under that lock too) starts a reaper only when the reaper lock
// is free: a reaper that holds it has yet to look, and will see the network.

// reaperArg0 marks a re-execution as a network reaper.
const reaperArg0 = "kiln-network-reaper"

// IsReaper reports whether this process was re-executed as a network
// reaper; main() must then call Reap before anything else.
func IsReaper() bool { return len(os.Args) > 0 && os.Args[0] == reaperArg0 }

// Reap is the reaper's main: it takes down the networks of the store root
// named by its argument once they have been idle for the teardown delay,
// and exits the process when none is left up without endpoints.
func Reap() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, reaperArg0+": bad arguments")
		os.Exit(2)
	}
	// The reaper's thread stays in the namespace of kiln's kernel state.
	if err := inExistingKernelNS(func() error { return reap(os.Args[1]) }); err != nil {
		fmt.Fprintln(os.Stderr, reaperArg0+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func (s *Store) reaperLockPath() string { return filepath.Join(s.dir(), "reaper.lock") }

// idle deals with the networks that lost their last endpoint: without a
// teardown delay they go down at once, else a reaper is made sure to come.
// The caller holds the store's lock and the host's.
func (st *state) idle() error {
	if st.s.cfg.teardownDelay() > 0 {
		return st.s.startReaper()
	}
	var errs []error
	for _, n := range st.nets {
		if n.Up && len(n.Endpoints) == 0 {
			errs = append(errs, st.takeDown(n))
		}
	}
	return errors.Join(errs...)
}

// startReaper starts a reaper for the store unless one holds the reaper
// lock. The caller holds the store's lock.
func (s *Store) startReaper() error {
	f, err := os.OpenFile(s.reaperLockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("start network reaper: %w", err)
	}
	defer f.Close()
	if err := lockFile(f, unix.LOCK_EX|unix.LOCK_NB); errors.Is(err, unix.EWOULDBLOCK) {
		return nil // a reaper runs and has yet to look
	} else if err != nil {
		return fmt.Errorf("start network reaper: %w", err)
	}
	root, err := filepath.Abs(s.root)
	if err != nil {
		return fmt.Errorf("start network reaper: %w", err)
	}
	env := append([]string{"GOMAXPROCS=1"}, rootless.Environ()...)
	if err := proc.StartDetached(reaperArg0, env, nil, root); err != nil {
		return fmt.Errorf("start network reaper: %w", err)
	}
	return nil
}

// reap is the reaper: it waits for the reaper lock, then looks at the
// networks until none is left to wait for.
func reap(root string) error {
	s, err := Open(root)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.reaperLockPath(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return s.sweepHost() // the store is gone
	}
	if err != nil {
		return fmt.Errorf("open reaper lock: %w", err)
	}
	defer f.Close()
	if err := lockFile(f, unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock reaper: %w", err)
	}
	for {
		wait, err := s.reapOnce(f)
		if wait <= 0 {
			return err
		}
		time.Sleep(wait)
	}
}

// reapOnce takes down, under the store's lock, the networks idle for the
// teardown delay, and returns how long until the next one is due (0: none
// is left, and the reaper lock, held as reaperLock, is released before the
// store's lock is).
func (s *Store) reapOnce(reaperLock *os.File) (time.Duration, error) {
	lf, err := os.OpenFile(filepath.Join(s.dir(), "lock"), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, s.sweepHost()
	}
	if err != nil {
		return 0, fmt.Errorf("lock networks: %w", err)
	}
	defer lf.Close()
	if err := lockFile(lf, unix.LOCK_EX); err != nil {
		return 0, fmt.Errorf("lock networks: %w", err)
	}
	var fst unix.Stat_t
	if unix.Fstat(int(lf.Fd()), &fst) == nil && fst.Nlink == 0 {
		return 0, s.sweepHost() // the store was deleted meanwhile
	}
	unlockHost, err := flock(hostLockPath())
	if err != nil {
		return 0, err
	}
	defer unlockHost()
	nets, err := s.load()
	if err != nil {
		return 0, err
	}
	st := &state{s: s, nets: nets, dirty: map[*Network]bool{}}
	delay, now := s.cfg.teardownDelay(), time.Now()
	var wait time.Duration
	var errs []error
	for _, n := range nets {
		if !n.Up || len(n.Endpoints) > 0 {
			continue
		}
		if left := n.IdleSince.Add(delay).Sub(now); left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		errs = append(errs, st.takeDown(n))
	}
	if wait == 0 {
		// (Bridges of deleted stores go too.)
		errs = append(errs, st.sweepOrphans())
		reaperLock.Close()
	}
	return wait, errors.Join(append(errs, st.save())...)
}

// sweepHost takes down the bridges of networks whose store no longer has
// them up, this store being gone.
func (s *Store) sweepHost() error {
	unlock, err := flock(hostLockPath())
	if err != nil {
		return err
	}
	defer unlock()
	st := &state{s: s, dirty: map[*Network]bool{}}
	return st.sweepOrphans()
}

// lockFile is flock(2) on f, retried when interrupted.
func lockFile(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// HoldForRemoval takes the lock of the networks of the store at root, for
// a caller about to delete the whole store: a reaper's look, which may
// write a network's record, cannot then fall in the middle of the
// deletion. A reaper that gets the lock after release (called once the
// store is gone) finds the lock file unlinked and only takes down the
// host's bridges left without a store.
func HoldForRemoval(root string) (release func(), err error) {
	s := &Store{root: root}
	f, err := os.OpenFile(filepath.Join(s.dir(), "lock"), os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil // no network was ever used
	}
	if err != nil {
		return nil, fmt.Errorf("lock networks: %w", err)
	}
	return holdLock(f)
}
