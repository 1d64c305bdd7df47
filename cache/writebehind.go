package cache

import (
	"time"

	"golang.org/x/sys/unix"
)

// Write-behind (Snapshot.WriteBehind): how often the filesystem's free
// space is looked at, and how much of it must have gone since the last
// sync for the next one.
const (
	writeBehindPeriod = 250 * time.Millisecond
	writeBehindBytes  = 64 << 20
)

// WriteBehind writes what a process puts into the snapshot's directory to
// disk while it runs (a RUN step), so that the sync that commits the
// snapshot as a new layer finds little left to write, instead of all of
// it at once after the process has ended. Until stop is called, a
// goroutine looks at the filesystem's free space every writeBehindPeriod
// (statfs counts data not yet written, delayed allocation included) and
// syncs the filesystem each time writeBehindBytes more of it has been used
// since the last sync: a process that writes little (most RUN steps) never
// causes one, so a step's duplicate of an existing layer is still never
// made durable unless it is large. The syncs go through a descriptor of
// their own, so a writeback error stays for the commit's sync to report.
// Nothing waits for the goroutine: stop returns at once, a sync under way
// ends on its own.
func (sn *Snapshot) WriteBehind() (stop func()) {
	fd, err := unix.Open(sn.tmp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return func() {} // a hint only: the commit's sync writes it all
	}
	done := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		tick := time.NewTicker(writeBehindPeriod)
		defer tick.Stop()
		writeBehind(fd, done, tick.C, unix.Syncfs)
	}()
	return func() { close(done) }
}

// writeBehind is WriteBehind's loop over the filesystem of fd, until done
// is closed: at each tick, a sync when writeBehindBytes more of the
// filesystem is used than after the last sync (or at the start).
func writeBehind(fd int, done <-chan struct{}, ticks <-chan time.Time, syncfs func(int) error) {
	base, ok := freeBytes(fd)
	for ok {
		select {
		case <-done:
			return
		case <-ticks:
		}
		var free uint64
		if free, ok = freeBytes(fd); !ok || free+writeBehindBytes > base {
			base = max(base, free) // space freed meanwhile raises the mark
			continue
		}
		select {
		case <-done: // the process ended while the tick waited
			return
		default:
		}
		_ = syncfs(fd)
		base, ok = freeBytes(fd)
	}
}

// freeBytes is the free space of the filesystem holding fd.
func freeBytes(fd int) (uint64, bool) {
	var st unix.Statfs_t
	if unix.Fstatfs(fd, &st) != nil {
		return 0, false
	}
	return st.Bfree * uint64(st.Bsize), true
}
