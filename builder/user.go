package builder

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ids is a resolved user: uid and primary gid.
type ids struct{ UID, GID int }

// resolveUserGroup resolves a --chown spec, or the USER that owns a new
// WORKDIR ("user", "uid", "user:group", "uid:gid"), through the image's
// passwd and group files as BuildKit does: a name takes its uid and primary
// gid from passwd, a bare uid is also its gid (no lookup), a name that is not
// found is an error. open returns a file of the image's root filesystem.
// (RUN resolves USER with runc's rules instead, in the runner.)
func resolveUserGroup(spec string, open func(path string) (io.ReadCloser, error)) (ids, error) {
	user, group, hasGroup := strings.Cut(spec, ":")
	var out ids
	uid, err := strconv.Atoi(user)
	if err == nil {
		out.UID, out.GID = uid, uid
	} else {
		e, ok := lookupPasswd(open, func(f []string) bool { return f[0] == user })
		if !ok {
			return ids{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", user)
		}
		out.UID, _ = strconv.Atoi(e[2])
		out.GID, _ = strconv.Atoi(e[3])
	}
	if hasGroup {
		if gid, err := strconv.Atoi(group); err == nil {
			out.GID = gid
		} else {
			e, ok := lookupEntry(open, "/etc/group", 3, func(f []string) bool { return f[0] == group })
			if !ok {
				return ids{}, fmt.Errorf("unable to find group %s: no matching entries in group file", group)
			}
			out.GID, _ = strconv.Atoi(e[2])
		}
	}
	return out, nil
}

func lookupPasswd(open func(string) (io.ReadCloser, error), match func([]string) bool) ([]string, bool) {
	return lookupEntry(open, "/etc/passwd", 4, match)
}

// lookupEntry finds the first line of a colon-separated file with at least
// minFields fields that match accepts.
func lookupEntry(open func(string) (io.ReadCloser, error), path string, minFields int, match func([]string) bool) ([]string, bool) {
	f, err := open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) < minFields {
			continue
		}
		if _, err := strconv.Atoi(fields[2]); err != nil {
			continue
		}
		if minFields >= 4 {
			if _, err := strconv.Atoi(fields[3]); err != nil {
				continue
			}
		}
		if match(fields) {
			return fields, true
		}
	}
	return nil, false
}
