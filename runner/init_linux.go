package runner

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The init's extra file descriptors (cmd.ExtraFiles order).
const (
	configFd  = 3 // initConfig JSON from Run, read to EOF
	reportFd  = 4 // initReport JSON messages to Run; close-on-exec, so EOF means exec (or death)
	consoleFd = 5 // with Terminal: the socket the terminal's master goes back on
)

// initReport is one message from the init to Run: first the stubs it
// created, then, only on failure, the error.
type initReport struct {
	Stubs []stubEntry `json:",omitempty"`
	Error string      `json:",omitempty"`
	Kind  string      `json:",omitempty"`
}

// Init is the sandbox init, run in the new namespaces when IsInit is true. It
// mounts the rootfs, pivots into it, switches to the user and execs the
// command: it never returns (on failure it reports the error to Run and exits
// non-zero).
func Init() {
	closeInheritedFiles(consoleFd)
	unix.CloseOnExec(reportFd)
	unix.CloseOnExec(consoleFd)
	rep := os.NewFile(reportFd, "report")
	enc := json.NewEncoder(rep)
	err := initSandbox(enc, rep)
	_ = enc.Encode(initReport{Error: err.Error(), Kind: errorKind(err)})
	os.Exit(1)
}

// initSandbox only returns on failure. rep is the report pipe, which the
// exec closes (or, with an init, the init once the command runs).
func initSandbox(enc *json.Encoder, rep *os.File) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sandbox init panic: %v", r)
		}
	}()
	unix.Umask(0)
	f := os.NewFile(configFd, "config")
	if !cInitBuilt {
		// No C init read the config's first byte (cplan_linux.go).
		var b [1]byte
		if _, err := io.ReadFull(f, b[:]); err != nil || b[0] != configGo {
			f.Close()
			return fmt.Errorf("read sandbox config: no Go config (%v)", err)
		}
	}
	var cfg initConfig
	err = json.NewDecoder(f).Decode(&cfg)
	f.Close()
	if err != nil {
		return fmt.Errorf("read sandbox config: %w", err)
	}
	if cfg.CgroupNS {
		// Run joined the cgroups before sending the config: the new
		// namespace is rooted there.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	report := func(stubs []stubEntry) error {
		if err := enc.Encode(initReport{Stubs: stubs}); err != nil {
			return fmt.Errorf("report mount stubs: %w", err)
		}
		return nil
	}
	if err := setupRootfs(&cfg, report); err != nil {
		return err
	}
	if cfg.CgroupNS {
		if err := mountCgroupfs(cfg.Privileged); err != nil {
			return err
		}
	}
	if err := applySysctls(cfg.Sysctls); err != nil {
		return err
	}
	if err := restrictProc(&cfg); err != nil {
		return err
	}
	if cfg.Hooks != nil {
		if err := cfg.Hooks.run(cfg.Hooks.StartContainer, specs.StateCreated, cfg.hostPid); err != nil {
			return fmt.Errorf("startContainer %w", err)
		}
	}
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("set hostname: %w", err)
	}
	if cfg.NetNone {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	return execProcess(&cfg, func() { rep.Close() })
}
