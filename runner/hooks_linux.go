package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Hooks are OCI lifecycle hooks of the sandbox (CDI devices bring them):
// each runs with the OCI state on its stdin and only its own Env.
//   - CreateContainer: in the sandbox's namespaces once its mounts are made,
//     before pivot_root (the path is the host's), status "creating";
//   - StartContainer: in the sandbox, after pivot_root, before the command
//     (the path is the sandbox's), status "created";
//   - Poststart: by Start, once the command runs, status "running";
//   - Poststop: by Wait, once the sandbox is gone, status "stopped".
//
// A failing CreateContainer or StartContainer hook fails the start;
// Poststart and Poststop failures are warnings on stderr, as the OCI
// runtime spec says.
type Hooks struct {
	CreateContainer, StartContainer, Poststart, Poststop []specs.Hook
	ID, Bundle                                           string // the state's id and bundle (a directory with config.json)
}

// run runs hooks in order with the state of pid (in the caller's PID
// namespace) and status on stdin; the first failure stops them.
func (h *Hooks) run(hooks []specs.Hook, status specs.ContainerState, pid int) error {
	if len(hooks) == 0 {
		return nil
	}
	state, err := json.Marshal(specs.State{Version: specs.Version, ID: h.ID, Status: status, Pid: pid, Bundle: h.Bundle})
	if err != nil {
		return err
	}
	// The init works with umask 0; what a hook creates gets the usual 022.
	defer unix.Umask(unix.Umask(0o022))
	for _, hk := range hooks {
		if err := runHook(hk, state); err != nil {
			return err
		}
	}
	return nil
}

func runHook(hk specs.Hook, state []byte) error {
	ctx := context.Background()
	if hk.Timeout != nil && *hk.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*hk.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, hk.Path)
	if len(hk.Args) > 0 {
		cmd.Args = hk.Args
	}
	cmd.Env = hk.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 512 {
			msg = msg[len(msg)-512:]
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timeout %ds)", err, *hk.Timeout)
		}
		if msg != "" {
			return fmt.Errorf("hook %s: %w: %s", hk.Path, err, msg)
		}
		return fmt.Errorf("hook %s: %w", hk.Path, err)
	}
	return nil
}

// hostPid is the init's PID in the host's PID namespace, read before
// pivot_root through the host's /proc.
func hostPid() int {
	s, err := os.Readlink("/proc/self")
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(s)
	return pid
}
