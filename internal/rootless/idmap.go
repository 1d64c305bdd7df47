package rootless

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// IDRange is one line of a uid_map or gid_map: Count ids from Inside (in
// the user namespace) are Outside.. on the host.
type IDRange struct {
	Inside, Outside, Count uint32
}

// subRange is a subordinate id range of /etc/subuid or /etc/subgid.
type subRange struct {
	start, count uint32
}

// parseSubIDs returns the ranges of the subordinate id file (/etc/subuid,
// /etc/subgid: "name-or-id:start:count" lines) that belong to the user
// name or uid, in file order. Malformed lines are skipped, as shadow's
// newuidmap does.
func parseSubIDs(r io.Reader, name string, uid int) ([]subRange, error) {
	var out []subRange
	id := strconv.Itoa(uid)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) != 3 || (f[0] != name && f[0] != id) {
			continue
		}
		start, err1 := strconv.ParseUint(f[1], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 || start+count > 1<<32-1 {
			continue
		}
		out = append(out, subRange{start: uint32(start), count: uint32(count)})
	}
	return out, sc.Err()
}

// idMap is the mapping of the user's namespace: 0 is the user's own id,
// 1.. the subordinate ranges one after the other.
func idMap(own int, subs []subRange) []IDRange {
	m := []IDRange{{Inside: 0, Outside: uint32(own), Count: 1}}
	next := uint32(1)
	for _, s := range subs {
		if uint64(next)+uint64(s.count) > 1<<32-1 {
			break
		}
		m = append(m, IDRange{Inside: next, Outside: s.start, Count: s.count})
		next += s.count
	}
	return m
}

// mapArgs are the arguments of newuidmap/newgidmap after the pid.
func mapArgs(m []IDRange) []string {
	var args []string
	for _, r := range m {
		args = append(args, strconv.FormatUint(uint64(r.Inside), 10), strconv.FormatUint(uint64(r.Outside), 10), strconv.FormatUint(uint64(r.Count), 10))
	}
	return args
}

// parseIDMap reads a /proc/PID/uid_map or gid_map.
func parseIDMap(data string) ([]IDRange, error) {
	var out []IDRange
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed id map line %q", line)
		}
		var v [3]uint32
		for i := range f {
			n, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("malformed id map line %q", line)
			}
			v[i] = uint32(n)
		}
		out = append(out, IDRange{Inside: v[0], Outside: v[1], Count: v[2]})
	}
	return out, nil
}

// String is the range as uid_map shows it, "inside:outside:count".
func (r IDRange) String() string { return fmt.Sprintf("%d:%d:%d", r.Inside, r.Outside, r.Count) }
