package rootless

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// Rootless kiln inside a container (a CI job, a pod) needs what rootless
// BuildKit needs: a seccomp profile and AppArmor that let it create a user
// namespace and mount, and an unmasked /proc (a new proc mount is refused
// while anything is mounted over a part of the container's). These errors
// say so in one line, naming the options of docker/kiln/podman run and
// Kubernetes that give it.

// UserNamespaceError is the error of a user namespace the system refused to
// create (unshare or clone with CLONE_NEWUSER, or newuidmap writing the map).
func UserNamespaceError(err error) error {
	return fmt.Errorf("cannot create a user namespace: %w (in a container? it needs --security-opt seccomp=unconfined and apparmor=unconfined, or a profile that allows unshare(CLONE_NEWUSER) and mount; on a host: sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces)", err)
}

// CheckProc returns an error when /proc is masked, as container runtimes
// mask it by default: rootless kiln could not mount a proc for its
// sandboxes.
func CheckProc() error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil // nothing to tell; mounting proc will say what is wrong
	}
	defer f.Close()
	if over := maskedProc(f); over != "" {
		return fmt.Errorf("/proc is masked (%s is mounted over): kiln cannot mount a proc for its sandboxes (in a container? it needs --security-opt systempaths=unconfined; podman: unmask=ALL; Kubernetes: procMount: Unmasked)", over)
	}
	return nil
}

// maskedProc is the first mount point below /proc in mountinfo, other than
// binfmt_misc's (a permanently empty directory, which the kernel allows), or
// "".
func maskedProc(mountinfo io.Reader) string {
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		point := fields[4]
		if strings.HasPrefix(point, "/proc/") && point != "/proc/sys/fs/binfmt_misc" {
			return point
		}
	}
	return ""
}
