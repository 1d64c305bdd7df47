package container

import (
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageConfig is the container's config as an image config, the base of
// `commit`: its command, environment, user, working directory, labels,
// ports, volumes, stop signal and health check.
func (c *Container) ImageConfig() dockerspec.DockerOCIImageConfig {
	cc := c.Config.Config
	return dockerspec.DockerOCIImageConfig{
		ImageConfig: ocispec.ImageConfig{
			User: cc.User, ExposedPorts: cc.ExposedPorts, Env: cc.Env, Entrypoint: cc.Entrypoint, Cmd: cc.Cmd,
			Volumes: cc.Volumes, WorkingDir: cc.WorkingDir, Labels: cc.Labels, StopSignal: cc.StopSignal,
		},
		DockerOCIImageConfigExt: dockerspec.DockerOCIImageConfigExt{Healthcheck: cc.Healthcheck},
	}
}

// WhilePaused runs fn with the container paused when it runs and pause is
// set (a consistent writable layer for commit), then unpauses it.
func (c *Container) WhilePaused(pause bool, fn func() error) error {
	if err := c.Refresh(); err != nil {
		return err
	}
	if !pause || !c.State.Running || c.State.Paused {
		return fn()
	}
	if err := c.Pause(); err != nil {
		return err
	}
	err := fn()
	if uerr := c.Unpause(); err == nil {
		err = uerr
	}
	return err
}

// LogCommit records a commit event.
func (c *Container) LogCommit(image string) {
	c.logEvent("commit", map[string]string{"imageName": image})
}
