package layer

import "golang.org/x/sys/unix"

// dropPagesMin is the smallest file whose pages are dropped: the files
// whose write-back the differ starts (writebackMin), so they are mostly
// clean by the caller's sync. Measured on a VM slow to give out pages it
// has not used before (512 MiB written in 2.3-3.2 s into such pages, in
// 0.6-0.9 s into reused ones): a page reused saves the next writes 7-13
// µs, 0.5-0.8 ms for a 256 KiB file, whose drop costs about 30 µs and a
// later reread from disk (an export) about 0.5 ms more than from the
// cache; a 4 KiB file would save about 10 µs for a 7 µs drop and a 0.15
// ms reread.
const dropPagesMin = writebackMin

// add holds a duplicate of fd, a file of size bytes the differ has read
// in full, if it is large enough and there is room.
func (p *PageDrops) add(fd int, size int64) {
	if p == nil || size < dropPagesMin || len(p.fds) >= p.max {
		return
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return // a hint only
	}
	p.fds = append(p.fds, dup)
}

// Drop drops the held files' pages from the page cache
// (POSIX_FADV_DONTNEED) and closes them. The caller calls it once the
// files are on disk: the kernel drops clean pages only (it starts writing
// dirty ones, and keeps them), so no data is ever lost, a drop before the
// sync only drops less.
func (p *PageDrops) Drop() {
	if p == nil {
		return
	}
	for _, fd := range p.fds {
		_ = unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED)
		unix.Close(fd)
	}
	p.fds = nil
}

// Close closes the held files and leaves their pages (a layer not made
// durable: a duplicate going to the trash, whose dirty pages a drop would
// only send to the disk).
func (p *PageDrops) Close() {
	if p == nil {
		return
	}
	for _, fd := range p.fds {
		unix.Close(fd)
	}
	p.fds = nil
}
