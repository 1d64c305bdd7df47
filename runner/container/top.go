package container

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/runner"
)

// Top lists the container's processes as docker top does: the host's ps
// run with psArgs (default "-ef"), keeping the header and the rows whose
// PID is one of the container's (everything in its cgroup, exec'd
// processes included). The last column keeps its spaces.
func (c *Container) Top(psArgs []string) (titles []string, procs [][]string, err error) {
	if err := c.Refresh(); err != nil {
		return nil, nil, err
	}
	if !c.State.Running {
		return nil, nil, fmt.Errorf("container %s: %w", c.ShortID(), ErrNotRunning)
	}
	pids := runner.OpenCgroup("kiln/" + c.ID).Pids()
	if runner.CgroupsUnavailable() != nil {
		pids = pidNamespacePids(c.State.Pid)
	}
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, nil, fmt.Errorf("top: ps %s: %s", strings.Join(psArgs, " "), bytes.TrimSpace(ee.Stderr))
		}
		return nil, nil, fmt.Errorf("top: %w", err)
	}
	return filterPs(string(out), pids)
}

// filterPs keeps the header of ps output and the rows of pids.
func filterPs(out string, pids []int) ([]string, [][]string, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return nil, nil, fmt.Errorf("top: ps output has no PID column: %q", lines[0])
	}
	var procs [][]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		if len(f) > len(titles) {
			f = append(f[:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		}
		procs = append(procs, f)
	}
	return titles, procs, nil
}
