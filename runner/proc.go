package runner

import "github.com/kiln-build/kiln/internal/proc"

// ProcStart returns the start time of pid (clock ticks after boot, field 22
// of /proc/<pid>/stat) and whether it is alive: a zombie is not. Together
// with the PID it names a process for good.
func ProcStart(pid int) (uint64, bool) { return proc.StartTime(pid) }
