package container

import (
	"testing"

	"github.com/kiln-build/kiln/runner"
)

// The run flags' parsers take user input: they must never panic, and what
// they accept must be usable (absolute targets, sane options).
func FuzzParseRunFlags(f *testing.F) {
	for _, s := range []string{"/t:size=64m,mode=1777,exec", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=700",
		"type=bind,src=/tmp,dst=/x,bind-propagation=rslave", "all", "2", `"device=0,1"`, "count=1,driver=nvidia",
		"net.ipv4.ip_forward", "fs.mqueue.msg_max", "nofile=1:2", "/t:", ":", "type=tmpfs,tmpfs-mode="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if m, err := ParseTmpfsFlag(s); err == nil {
			if m.Target == "" || m.Target[0] != '/' {
				t.Errorf("ParseTmpfsFlag(%q) accepted target %q", s, m.Target)
			}
			for _, o := range tmpfsMountOptions(m.TmpfsOptions) {
				if o == "" {
					t.Errorf("ParseTmpfsFlag(%q): an empty mount option", s)
				}
			}
		}
		if m, err := ParseMountFlag(s); err == nil && (m.Target == "" || m.Target[0] != '/') {
			t.Errorf("ParseMountFlag(%q) accepted target %q", s, m.Target)
		}
		if r, err := ParseGpus(s); err == nil && r.Count == 0 && len(r.DeviceIDs) == 0 {
			t.Errorf("ParseGpus(%q) asks for nothing", s)
		}
		_ = runner.ValidateSysctl(s, true)
		_, _ = runner.ParseUlimit(s)
	})
}
