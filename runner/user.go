package runner

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Errors of user resolution, matching runc/BuildKit wording.
var (
	ErrNoPasswdEntries = errors.New("no matching entries in passwd file")
	ErrNoGroupEntries  = errors.New("no matching entries in group file")
)

const maxID = 1<<31 - 1

// execUser is a resolved Spec.User.
type execUser struct {
	UID, GID int
	Groups   []int // supplementary groups, the primary GID first (as BuildKit passes them)
	Home     string
}

type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

// resolveUser resolves spec ("", "name", "uid", "name:group", "uid:gid")
// against passwd and group (either may be nil when the file is missing), like
// BuildKit's oci.GetUser on top of runc's user.GetExecUser: "uid:gid" needs no
// entries, supplementary groups only come with the implicit-group forms, and
// the default user is uid 0.
func resolveUser(spec string, passwd, group io.Reader) (execUser, error) {
	users, err := parsePasswd(passwd)
	if err != nil {
		return execUser{}, err
	}
	if spec == "" {
		spec = "0"
	}
	userArg, groupArg, _ := strings.Cut(spec, ":")
	u := execUser{Home: "/"}

	// Fast path: both parts numeric, no lookups needed (HOME still comes from
	// passwd, as runc sets it).
	if uid, ok := parseID(userArg); ok && groupArg != "" {
		if gid, ok := parseID(groupArg); ok {
			u.UID, u.GID, u.Groups = uid, gid, []int{gid}
			if i := slices.IndexFunc(users, func(p passwdEntry) bool { return p.uid == uid }); i >= 0 {
				u.Home = users[i].home
			}
			return u, nil
		}
	}

	uidArg, uidErr := strconv.Atoi(userArg)
	matched := ""
	i := slices.IndexFunc(users, func(p passwdEntry) bool {
		if uidErr == nil {
			return p.uid == uidArg
		}
		return p.name == userArg
	})
	switch {
	case i >= 0:
		matched = users[i].name
		u.UID, u.GID, u.Home = users[i].uid, users[i].gid, users[i].home
	case uidErr != nil:
		return execUser{}, fmt.Errorf("unable to find user %s: %w", userArg, ErrNoPasswdEntries)
	case uidArg < 0 || uidArg > maxID:
		return execUser{}, fmt.Errorf("user %s: uid out of range", userArg)
	default:
		u.UID = uidArg
	}

	var sgids []int
	if groupArg != "" || matched != "" {
		groups, err := parseGroup(group)
		if err != nil {
			return execUser{}, err
		}
		if groupArg != "" {
			gidArg, gidErr := strconv.Atoi(groupArg)
			j := slices.IndexFunc(groups, func(g groupEntry) bool {
				if gidErr == nil {
					return g.gid == gidArg
				}
				return g.name == groupArg
			})
			switch {
			case j >= 0:
				u.GID = groups[j].gid
			case gidErr != nil:
				return execUser{}, fmt.Errorf("unable to find group %s: %w", groupArg, ErrNoGroupEntries)
			case gidArg < 0 || gidArg > maxID:
				return execUser{}, fmt.Errorf("group %s: gid out of range", groupArg)
			default:
				u.GID = gidArg
			}
		} else {
			for _, g := range groups {
				if slices.Contains(g.members, matched) {
					sgids = append(sgids, g.gid)
				}
			}
		}
	}
	u.Groups = []int{u.GID}
	for _, g := range sgids {
		if !slices.Contains(u.Groups, g) {
			u.Groups = append(u.Groups, g)
		}
	}
	return u, nil
}

// parseID parses a numeric id; "root" is 0, as in BuildKit's fast path.
func parseID(s string) (int, bool) {
	if s == "root" {
		return 0, true
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > maxID {
		return 0, false
	}
	return int(n), true
}

// userFileLimit bounds how much of /etc/passwd or /etc/group is read.
const userFileLimit = 10 << 20

func scanColonLines(r io.Reader, name string, fn func(fields []string)) error {
	if r == nil {
		return nil
	}
	lr := &io.LimitedReader{R: r, N: userFileLimit + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	if lr.N == 0 {
		return fmt.Errorf("read %s: larger than %d bytes", name, userFileLimit)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// parsePasswd parses /etc/passwd lines name:password:uid:gid:gecos:home:shell,
// skipping malformed ones.
func parsePasswd(r io.Reader) ([]passwdEntry, error) {
	var out []passwdEntry
	err := scanColonLines(r, "/etc/passwd", func(f []string) {
		if len(f) < 4 {
			return
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid, home: "/"}
		if len(f) > 5 && f[5] != "" {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out, err
}

// parseGroup parses /etc/group lines name:password:gid:member,member,
// skipping malformed ones.
func parseGroup(r io.Reader) ([]groupEntry, error) {
	var out []groupEntry
	err := scanColonLines(r, "/etc/group", func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	})
	return out, err
}
