// Package proc is what kiln needs of processes it starts or finds again:
// a process named for good by its pid and start time, and a child run in
// the foreground with signals passed on to it (the re-executions of kiln
// into a mount or user namespace).
package proc

import (
	"bytes"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// StartTime returns the start time of pid (clock ticks after boot, field 22
// of /proc/<pid>/stat) and whether it is alive: a zombie is not. Together
// with the PID it names a process for good.
func StartTime(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	return parseStartTime(data)
}

// parseStartTime reads the state and start time of a /proc/<pid>/stat line.
func parseStartTime(data []byte) (uint64, bool) {
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

// RunForwarding starts cmd, passes the signals sigs this process receives
// on to it until it ends, and returns its exit code (128+N when signal N
// killed it). err is a failure to start it.
func RunForwarding(cmd *exec.Cmd, sigs ...os.Signal) (int, error) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, sigs...)
	defer signal.Stop(ch)
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	_ = cmd.Wait()
	close(done)
	return ExitCode(cmd.ProcessState), nil
}

// ExitCode is the exit code of a process that ended: 128+N when signal N
// killed it, as a shell reports it.
func ExitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// All lists the pids of /proc: every process this one can see.
func All() []int {
	ents, _ := os.ReadDir("/proc")
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}
