package rootless

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

// docker's default /proc (masked paths over-mounted, /proc/sys read-only)
// and the same with systempaths=unconfined, as mountinfo shows them.
const (
	dockerProc = `94 70 0:43 / / rw,relatime - overlay none rw
95 94 0:45 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
100 95 0:45 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
101 95 0:45 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
102 95 0:46 /null /proc/kcore rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
103 95 0:51 / /proc/acpi ro,relatime - tmpfs tmpfs ro
96 94 0:46 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
`
	unmaskedProc = `94 70 0:43 / / rw,relatime - overlay none rw
95 94 0:45 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
97 95 0:60 / /proc/sys/fs/binfmt_misc rw,relatime - binfmt_misc binfmt_misc rw
96 94 0:46 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
98 94 0:47 / /processes rw - tmpfs tmpfs rw
`
)

func TestMaskedProc(t *testing.T) {
	if got := maskedProc(strings.NewReader(dockerProc)); got != "/proc/bus" {
		t.Errorf("docker's default /proc: masked at %q, want /proc/bus", got)
	}
	if got := maskedProc(strings.NewReader(unmaskedProc)); got != "" {
		t.Errorf("unmasked /proc (binfmt_misc mounted): masked at %q", got)
	}
}

func TestContainerErrorsNameTheOptions(t *testing.T) {
	err := UserNamespaceError(syscall.EPERM)
	if !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), "seccomp=unconfined") || strings.Contains(err.Error(), "\n") {
		t.Errorf("user namespace error: %v", err)
	}
}
