package container

import (
	"os"
	"path/filepath"
)

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
	resolv, hosts, err := networkEtcFiles(c)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"hosts":       hosts,
		"hostname":    []byte(c.Config.Config.Hostname + "\n"),
		"resolv.conf": resolv,
	} {
		if err := os.WriteFile(filepath.Join(c.Dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
