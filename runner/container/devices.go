package container

import (
	"fmt"
	"path"
	"strings"

	"github.com/kiln-build/kiln/runner"
)

// DeviceMapping is one --device, as docker's HostConfig.Devices shows it.
type DeviceMapping struct {
	PathOnHost        string
	PathInContainer   string
	CgroupPermissions string
}

// ParseDevice parses docker's --device HOST[:CONTAINER][:PERMISSIONS]
// (permissions: some of r, w, m; default rwm) and checks that the host
// path is a device.
func ParseDevice(spec string) (DeviceMapping, error) {
	parts := strings.Split(spec, ":")
	d := DeviceMapping{PathOnHost: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
	case 2:
		if isPermissions(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		d.PathInContainer, d.CgroupPermissions = parts[1], parts[2]
	default:
		return DeviceMapping{}, fmt.Errorf("invalid device specification: %s", spec)
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	if !path.IsAbs(d.PathOnHost) || !path.IsAbs(d.PathInContainer) || !isPermissions(d.CgroupPermissions) {
		return DeviceMapping{}, fmt.Errorf("invalid device specification: %s", spec)
	}
	if _, err := runner.DeviceRule(d.PathOnHost, d.CgroupPermissions); err != nil {
		return DeviceMapping{}, fmt.Errorf("error gathering device information while adding custom device %q: %w", d.PathOnHost, err)
	}
	return d, nil
}

func isPermissions(s string) bool {
	return s != "" && strings.Trim(s, "rwm") == ""
}

// deviceRules are the devices cgroup rules of hc: nil (everything) when
// privileged, else docker's defaults and the --device ones.
func deviceRules(hc HostConfig) ([]string, error) {
	if hc.Privileged {
		return nil, nil
	}
	rules := append([]string{}, runner.DefaultDevices...)
	for _, d := range hc.Devices {
		r, err := runner.DeviceRule(d.PathOnHost, d.CgroupPermissions)
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", d.PathOnHost, err)
		}
		rules = append(rules, r)
	}
	edits, err := cdiEdits(&hc)
	if err != nil {
		return nil, err
	}
	return append(rules, cdiDeviceRules(edits)...), nil
}
