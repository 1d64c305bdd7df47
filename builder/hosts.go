package builder

import (
	"bytes"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"strings"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner"
)

// ParseHost reads an --add-host value, NAME:IP or NAME=IP (IPv6 addresses
// keep their colons: "db:::1"), as docker build does, into an /etc/hosts
// entry "NAME:IP" normalized. host-gateway is refused: kiln's RUN steps have
// no gateway of the host to name.
func ParseHost(v string) (string, error) {
	name, ip, ok := strings.Cut(v, "=")
	if !ok {
		name, ip, ok = strings.Cut(v, ":")
	}
	if !ok || name == "" || ip == "" {
		return "", fmt.Errorf("add-host %q: want NAME:IP: %w", v, cache.ErrInvalid)
	}
	if ip == "host-gateway" {
		return "", fmt.Errorf("add-host %q: host-gateway is not supported by kiln build: %w", v, cache.ErrInvalid)
	}
	addr, err := netip.ParseAddr(strings.Trim(ip, "[]"))
	if err != nil {
		return "", fmt.Errorf("add-host %q: %q is not an IP address: %w", v, ip, cache.ErrInvalid)
	}
	if strings.ContainsAny(name, " \t\n#") {
		return "", fmt.Errorf("add-host %q: bad host name %q: %w", v, name, cache.ErrInvalid)
	}
	return name + ":" + addr.String(), nil
}

// addHosts gives a RUN step an /etc/hosts of its own with the build's
// extra hosts (Options.ExtraHosts) after the entries it would have had; the
// returned function removes it once the step ran.
func (b *build) addHosts(spec *runner.Spec) (func(), error) {
	if len(b.opts.ExtraHosts) == 0 {
		return func() {}, nil
	}
	base := "/etc/hosts"
	if p, ok := spec.Files["/etc/hosts"]; ok {
		base = p
	}
	data, err := os.ReadFile(base)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("add-host: %w", err)
	}
	var buf bytes.Buffer
	buf.Write(data)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		buf.WriteByte('\n')
	}
	for _, h := range b.opts.ExtraHosts {
		name, ip, _ := strings.Cut(h, ":")
		fmt.Fprintf(&buf, "%s\t%s\n", ip, name)
	}
	dir, err := b.store.TempDir("hosts-")
	if err != nil {
		return nil, fmt.Errorf("add-host: %w", err)
	}
	p := dir + "/hosts"
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("add-host: %w", err)
	}
	files := maps.Clone(spec.Files) // the build network's map is shared
	if files == nil {
		files = map[string]string{}
	}
	files["/etc/hosts"] = p
	spec.Files = files
	return func() { os.RemoveAll(dir) }, nil
}
