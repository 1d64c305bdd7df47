package container

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// shed gives back what a monitor's start-up needed and its long wait does
// not: the heap freed since, and the pages of code and read-only data of
// the binary (and of libc) mapped so far: start-up runs the initialization
// of every package of kiln, and the kernel maps the neighbours of each page
// it faults in. They stay in the page cache, shared with every other
// process, and come back on use.
func shed() {
	steadyGC()
	debug.FreeOSMemory()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	for _, r := range cleanFileMappings(string(smaps)) {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(r[0]), uintptr(r[1]-r[0]), unix.MADV_DONTNEED)
	}
}

// cleanFileMappings lists the read-only private file mappings of an smaps
// listing that no page was ever written to (Anonymous: 0 kB): dropping
// their pages loses nothing. A mapping written once and made read-only
// later, as the dynamic linker does to relocated data (RELRO), has
// anonymous pages and is left alone.
func cleanFileMappings(smaps string) [][2]uint64 {
	var out [][2]uint64
	var cur [2]uint64
	candidate := false
	for _, line := range strings.Split(smaps, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && len(f) >= 5 {
			// A mapping's header: start-end perms offset dev inode [path].
			start, err1 := strconv.ParseUint(lo, 16, 64)
			end, err2 := strconv.ParseUint(hi, 16, 64)
			candidate = err1 == nil && err2 == nil && end > start && len(f) >= 6 &&
				strings.HasPrefix(f[5], "/") && (f[1] == "r-xp" || f[1] == "r--p")
			cur = [2]uint64{start, end}
			continue
		}
		if candidate && f[0] == "Anonymous:" {
			if len(f) >= 2 && f[1] == "0" {
				out = append(out, cur)
			}
			candidate = false
		}
	}
	return out
}

// A monitor starts with its collector off: start-up allocates a few
// megabytes once, and a collection then (at the 20% a waiting monitor
// keeps) only delays the start on a monitor that has one processor. The
// heap stays bounded by startupMemoryLimit all the same: the collector
// runs when it nears it.
const startupMemoryLimit = 32 << 20

// shedDelay is how long a process runs before its monitor sheds: a short
// one (`run --rm IMAGE true`) is gone before, and its monitor never pays
// for a collection and a walk of its mappings between start and exit.
const shedDelay = time.Second

// startupGC turns a monitor's collector off for its start-up.
func startupGC() {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(startupMemoryLimit)
}

// steadyGC is the collector of a monitor that waits: a small heap.
func steadyGC() {
	debug.SetGCPercent(20)
	debug.SetMemoryLimit(math.MaxInt64)
}

// shedLater sheds once the process has run for shedDelay, unless the
// returned stop is called first (when it exited).
func shedLater() (stop func()) {
	t := time.AfterFunc(shedDelay, shed)
	return func() { t.Stop() }
}
