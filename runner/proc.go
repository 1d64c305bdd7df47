package runner

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// ProcStart returns the start time of pid (clock ticks after boot, field 22
// of /proc/<pid>/stat) and whether it is alive: a zombie is not. Together
// with the PID it names a process for good.
func ProcStart(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parseProcStart(data)
}

// parseProcStart reads the state and start time of a /proc/<pid>/stat line.
func parseProcStart(data []byte) (uint64, bool) {
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	n, err := strconv.ParseUint(f[19], 10, 64)
	return n, err == nil
}
