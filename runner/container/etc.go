package container

import (
	"os"
	"path/filepath"
)

// hostsContent is Docker's /etc/hosts for a container without a network.
const hostsContent = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
ff00::0	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// etcFiles maps container paths to the files of the container directory
// bind-mounted over them.
func (c *Container) etcFiles() map[string]string {
	return map[string]string{
		"/etc/hosts":       filepath.Join(c.Dir, "hosts"),
		"/etc/hostname":    filepath.Join(c.Dir, "hostname"),
		"/etc/resolv.conf": filepath.Join(c.Dir, "resolv.conf"),
	}
}

// writeEtcFiles writes the container's own /etc/hosts, /etc/hostname and a
// copy of the host's /etc/resolv.conf.
func writeEtcFiles(c *Container) error {
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil // no resolver configured: an empty file, as Docker leaves it
	}
	for name, data := range map[string][]byte{
		"hosts":       []byte(hostsContent),
		"hostname":    []byte(c.Config.Config.Hostname + "\n"),
		"resolv.conf": resolv,
	} {
		if err := os.WriteFile(filepath.Join(c.Dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
