package runner

import (
	"errors"
	"fmt"
	"strings"
)

// Mount describes one mount as data, like containerd's mount.Mount. It is
// mounted by MountOverlay.
type Mount struct {
	Type    string   // "overlay", "bind", "tmpfs", "proc", "sysfs", ...
	Source  string   // the source path for bind, the fs name otherwise
	Target  string   // where to mount it
	Options []string // mount(8)-style options: "ro", "nosuid", "rbind", "mode=755", "lowerdir+=/x", ...
}

// overlayFixedOptions keep the upperdir a plain, exact diff of the change:
// no index entries, no redirect xattrs for renamed directories and no
// metadata-only copy-ups.
var overlayFixedOptions = []string{"index=off", "redirect_dir=off", "metacopy=off"}

// userxattrOptions are overlay options for a mount outside the initial user
// namespace: overlayfs keeps its xattrs in user.overlay. (userxattr), and
// with it refuses redirect_dir=off (which follows existing redirects,
// trusted xattrs) but takes nofollow, which neither makes nor follows them.
func userxattrOptions(opts []string) []string {
	out := make([]string, 0, len(opts)+1)
	for _, o := range opts {
		if o == "redirect_dir=off" {
			o = "redirect_dir=nofollow"
		}
		if o != "userxattr" {
			out = append(out, o)
		}
	}
	return append(out, "userxattr")
}

// ErrOverlayOptionsTooLong is returned when the classic mount(2) data string
// for an overlay does not fit in one page.
var ErrOverlayOptionsTooLong = errors.New("overlay options exceed the page size")

// OverlayMount builds the overlay Mount for lowers (top-most FIRST, like the
// overlayfs lowerdir order), upper and work. Each lower is one "lowerdir+="
// option, so the number of lowers is not limited by the page size when the
// kernel has the new mount API (6.8+).
//
// Overlayfs needs at least one lower: with no lowers (FROM scratch) there is
// nothing to hide or copy up, so it returns a bind mount of upper on target
// instead; writes then land directly in upper, which diffs the same way.
func OverlayMount(target string, lowers []string, upper, work string) Mount {
	if len(lowers) == 0 {
		return Mount{Type: "bind", Source: upper, Target: target, Options: []string{"bind"}}
	}
	opts := make([]string, 0, len(overlayFixedOptions)+len(lowers)+2)
	opts = append(opts, overlayFixedOptions...)
	for _, l := range lowers {
		opts = append(opts, "lowerdir+="+l)
	}
	opts = append(opts, "upperdir="+upper, "workdir="+work)
	return Mount{Type: "overlay", Source: "overlay", Target: target, Options: opts}
}

// Volatile returns m with overlayfs's "volatile" option when m is an
// overlay: the overlay then never syncs its upper directory, neither for an
// fsync or syncfs inside nor when it is unmounted (which otherwise syncs the
// whole filesystem holding upper, every process's dirty data included, on
// the unmounting process's time). For an upper directory that is thrown
// away, or that its owner syncs itself before trusting it (the store syncs a
// snapshot before it commits it as a layer). The workdir must be fresh and
// not mounted again: overlayfs marks it dirty (work/incompat/volatile).
// Kernels without the option (before 5.10) mount without it.
func (m Mount) Volatile() Mount {
	if m.Type == "overlay" {
		m.Options = append(m.Options[:len(m.Options):len(m.Options)], overlayVolatile)
	}
	return m
}

const overlayVolatile = "volatile"

// overlayOptions splits overlay options into the ordered lower directories
// (from "lowerdir+=" and from ":"-separated, backslash-escaped "lowerdir=")
// and the remaining options, in order.
func overlayOptions(opts []string) (lowers, rest []string) {
	for _, o := range opts {
		switch {
		case strings.HasPrefix(o, "lowerdir+="):
			lowers = append(lowers, strings.TrimPrefix(o, "lowerdir+="))
		case strings.HasPrefix(o, "lowerdir="):
			lowers = append(lowers, splitEscaped(strings.TrimPrefix(o, "lowerdir="), ':')...)
		default:
			rest = append(rest, o)
		}
	}
	return lowers, rest
}

// splitEscaped splits s on sep, honouring backslash escapes (as overlayfs
// parses lowerdir=).
func splitEscaped(s string, sep byte) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == sep:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// overlayData builds the classic mount(2) data string for an overlay: lowers
// joined with ':' (with ':' and '\' escaped) followed by the other data
// options. Paths are used as given. Paths containing ',' cannot be expressed,
// and the string must fit in pageSize-1 bytes (ErrOverlayOptionsTooLong).
func overlayData(lowers, data []string, pageSize int) (string, error) {
	if len(lowers) == 0 {
		return "", errors.New("overlay needs at least one lowerdir")
	}
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	var b strings.Builder
	b.WriteString("lowerdir=")
	for i, l := range lowers {
		if strings.Contains(l, ",") {
			return "", fmt.Errorf("overlay lowerdir %q: contains a comma", l)
		}
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(esc.Replace(l))
	}
	for _, d := range data {
		if k, v, ok := strings.Cut(d, "="); ok && (k == "upperdir" || k == "workdir") && strings.Contains(v, ",") {
			return "", fmt.Errorf("overlay %s %q: contains a comma", k, v)
		}
		b.WriteByte(',')
		b.WriteString(d)
	}
	if b.Len() > pageSize-1 {
		return "", fmt.Errorf("build overlay data (%d bytes, %d lowers): %w", b.Len(), len(lowers), ErrOverlayOptionsTooLong)
	}
	return b.String(), nil
}
