package container

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// shed gives back what a monitor's start-up needed and its long wait does
// not: the heap freed since, and the pages of code and read-only data of
// the binary (and of libc) mapped so far: start-up runs the initialization
// of every package of kiln, and the kernel maps the neighbours of each page
// it faults in. They stay in the page cache, shared with every other
// process, and come back on use.
func shed() {
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
