package cache

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Process names a process across PID reuse: its PID and its start time
// (clock ticks after boot, field 22 of /proc/PID/stat).
type Process struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// Self is the calling process.
func Self() (*Process, error) {
	start, err := processStart(os.Getpid())
	if err != nil {
		return nil, err
	}
	return &Process{PID: os.Getpid(), Start: start}, nil
}

// Alive reports whether the process still runs (a zombie does until it is
// reaped).
func (p Process) Alive() bool {
	start, err := processStart(p.PID)
	return err == nil && start == p.Start
}

func processStart(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	return strconv.ParseUint(f[19], 10, 64) // field 22: starttime
}
