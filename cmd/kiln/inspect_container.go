package main

import (
	"strings"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

// containerInspect is docker's container inspect shape.
type containerInspect struct {
	ID              string                    `json:"Id"`
	Created         string                    `json:"Created"`
	Path            string                    `json:"Path"`
	Args            []string                  `json:"Args"`
	State           containerState            `json:"State"`
	Image           string                    `json:"Image"`
	ResolvConfPath  string                    `json:"ResolvConfPath"`
	HostnamePath    string                    `json:"HostnamePath"`
	HostsPath       string                    `json:"HostsPath"`
	LogPath         string                    `json:"LogPath"`
	Name            string                    `json:"Name"`
	RestartCount    int                       `json:"RestartCount"`
	Driver          string                    `json:"Driver"`
	Platform        string                    `json:"Platform"`
	MountLabel      string                    `json:"MountLabel"`
	ProcessLabel    string                    `json:"ProcessLabel"`
	AppArmorProfile string                    `json:"AppArmorProfile"`
	ExecIDs         []string                  `json:"ExecIDs"`
	HostConfig      container.HostConfig      `json:"HostConfig"`
	GraphDriver     graphDriver               `json:"GraphDriver"`
	SizeRw          *int64                    `json:"SizeRw,omitempty"`
	SizeRootFs      *int64                    `json:"SizeRootFs,omitempty"`
	Mounts          []container.MountPoint    `json:"Mounts"`
	Config          container.ContainerConfig `json:"Config"`
	NetworkSettings container.NetworkSettings `json:"NetworkSettings"`
}

type containerState struct {
	Status     string `json:"Status"`
	Running    bool   `json:"Running"`
	Paused     bool   `json:"Paused"`
	Restarting bool   `json:"Restarting"`
	OOMKilled  bool   `json:"OOMKilled"`
	Dead       bool   `json:"Dead"`
	Pid        int    `json:"Pid"`
	ExitCode   int    `json:"ExitCode"`
	Error      string `json:"Error"`
	StartedAt  string `json:"StartedAt"`
	FinishedAt string `json:"FinishedAt"`

	Health *container.Health `json:"Health,omitempty"` // with a health check only
}

const dockerTime = "2006-01-02T15:04:05.999999999Z07:00"

func inspectContainer(c *container.Container, s *cache.Store, size bool) *containerInspect {
	st := c.State
	mounts := c.Mounts
	if mounts == nil {
		mounts = []container.MountPoint{}
	}
	ci := &containerInspect{
		ID: c.ID, Created: c.Created.Format(dockerTime), Path: c.Path, Args: c.Args,
		State: containerState{
			Status: st.Status, Running: st.Running, Paused: st.Paused, Restarting: st.Restarting,
			OOMKilled: st.OOMKilled, Dead: st.Dead, Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: st.StartedAt.Format(dockerTime), FinishedAt: st.FinishedAt.Format(dockerTime),
			Health: st.Health,
		},
		Image:          c.Image.String(),
		ResolvConfPath: c.Dir + "/resolv.conf", HostnamePath: c.Dir + "/hostname", HostsPath: c.Dir + "/hosts",
		LogPath: c.LogPath(), Name: "/" + c.Name, RestartCount: st.RestartCount, Driver: "overlay2", Platform: "linux",
		HostConfig: c.HostConfig,
		GraphDriver: graphDriver{Name: "overlay2", Data: map[string]string{
			"LowerDir": strings.Join(c.Lowers, ":"), "UpperDir": c.UpperDir(), "WorkDir": c.WorkDir(), "MergedDir": c.MergedDir(),
		}},
		Mounts: mounts, Config: c.Config.Config,
		NetworkSettings: c.NetworkSettings(),
	}
	if size {
		rw := c.SizeRw()
		img, _ := imageSize(s, c.Layers)
		total := rw + img
		ci.SizeRw, ci.SizeRootFs = &rw, &total
	}
	return ci
}
