package layer

import "golang.org/x/sys/unix"

// writeback starts the disk writes of the files the differ reads
// (DiffOptions.Writeback): sync_file_range(SYNC_FILE_RANGE_WRITE) only
// queues a file's dirty pages for writing and waits for none of them, but
// queueing many megabytes can still block on the device's request queue,
// so it runs in a goroutine of its own and the differ never waits for it.
// Each file comes as a duplicate of the differ's descriptor, which the
// goroutine closes.
type writeback struct {
	files chan int
}

// writebackMin is the smallest file whose write-back the differ starts:
// smaller files are left to the caller's sync (the three system calls a
// file costs would save little).
const writebackMin = 256 << 10

// syncFileRange is sync_file_range(2); tests see through it which files
// the differ started writing.
var syncFileRange = unix.SyncFileRange

func newWriteback() *writeback {
	wb := &writeback{files: make(chan int, 64)}
	go func() {
		for fd := range wb.files {
			_ = syncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
			unix.Close(fd)
		}
	}()
	return wb
}

// start queues the write-back of the file fd. When the queue is full the
// file is left to the caller's sync: the differ never waits.
func (wb *writeback) start(fd int) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return // a hint only: the caller's sync writes the file anyway
	}
	select {
	case wb.files <- dup:
	default:
		unix.Close(dup)
	}
}

// close lets the goroutine end once it has queued the files it was given;
// nothing waits for it.
func (wb *writeback) close() { close(wb.files) }
