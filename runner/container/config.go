package container

import (
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/kiln-build/kiln/runner/network"
)

// Config is the persisted description of a container (config.json). Field
// names follow Docker's container inspect output.
type Config struct {
	ID        string    `json:"Id"`
	Name      string    `json:"Name"` // without the leading "/"
	Created   time.Time `json:"Created"`
	Path      string    `json:"Path"`
	Args      []string  `json:"Args"`
	Image     digest.Digest
	ImageName string // the reference the user gave
	// Layers are the image's diffIDs (garbage collection keeps them) and
	// Lowers their snapshot directories, top-most first, empty layers left out.
	Layers     []digest.Digest
	Lowers     []string
	Config     ContainerConfig
	HostConfig HostConfig
	Mounts     []MountPoint
}

// ContainerConfig is Docker's container Config.
type ContainerConfig struct {
	Hostname     string
	User         string
	AttachStdin  bool
	AttachStdout bool
	AttachStderr bool
	Tty          bool
	OpenStdin    bool
	StdinOnce    bool
	Env          []string
	Cmd          []string
	Image        string
	Volumes      map[string]struct{}
	WorkingDir   string
	Entrypoint   []string
	Labels       map[string]string
	StopSignal   string              `json:",omitempty"`
	StopTimeout  *int                `json:",omitempty"`
	ExposedPorts map[string]struct{} `json:",omitempty"`
	Healthcheck  *HealthConfig       `json:",omitempty"` // health.go
}

// HostConfig is the part of Docker's HostConfig kiln supports.
type HostConfig struct {
	Binds          []string
	AutoRemove     bool
	RestartPolicy  RestartPolicy
	Privileged     bool
	ReadonlyRootfs bool
	CapAdd         []string
	CapDrop        []string
	Init           bool
	Devices        []DeviceMapping
	NetworkMode    string
	Memory         int64
	NanoCpus       int64
	CpuShares      int64
	PidsLimit      *int64
	MemorySwap     int64       // memory+swap limit; -1 unlimited swap (resources.go)
	CpusetCpus     string      // CPUs the container may run on ("0-1", "0,2")
	Mounts         []MountSpec `json:",omitempty"`
	MaskedPaths    []string
	ReadonlyPaths  []string
	SecurityOpt    []string `json:",omitempty"` // docker's --security-opt values (a seccomp profile inline, as docker stores it)
	RunOptions              // --ulimit, --shm-size, --sysctl, --gpus (hostopts.go)

	// Networking (see network.go).
	PortBindings    network.PortMap `json:",omitempty"`
	PublishAllPorts bool
	Dns             []string
	DnsSearch       []string
	DnsOptions      []string
	ExtraHosts      []string
}

// RestartPolicy is Docker's: Name is "no", "on-failure", "always" or
// "unless-stopped"; MaximumRetryCount bounds on-failure.
type RestartPolicy struct {
	Name              string
	MaximumRetryCount int
}

// MountSpec is one --mount or -v request.
type MountSpec struct {
	Type     string `json:"Type"` // bind, volume, tmpfs
	Source   string `json:"Source,omitempty"`
	Target   string `json:"Target"`
	ReadOnly bool   `json:"ReadOnly,omitempty"`
	NoCopy   bool   `json:"NoCopy,omitempty"` // a volume that is not filled from the image

	BindOptions  *BindOptions  `json:"BindOptions,omitempty"`  // type=bind: bind-propagation (mounts.go)
	TmpfsOptions *TmpfsOptions `json:"TmpfsOptions,omitempty"` // type=tmpfs: tmpfs-size, tmpfs-mode, --tmpfs options
}

// MountPoint is a resolved mount, as Docker's inspect "Mounts" shows it.
type MountPoint struct {
	Type        string `json:"Type"`
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Driver      string `json:"Driver,omitempty"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
}

// State is the container's runtime state (state.json). The first fields
// are Docker's State; the rest let anyone check that the recorded processes
// are still the ones alive.
type State struct {
	Status     string // created, running, restarting, exited, dead
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool
	Dead       bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time

	PidStart     uint64 `json:"kilnPidStart,omitempty"`     // /proc/<Pid>/stat starttime
	MonitorPid   int    `json:"kilnMonitorPid,omitempty"`   // the monitor process
	MonitorStart uint64 `json:"kilnMonitorStart,omitempty"` // its starttime
	RestartCount int    `json:"kilnRestartCount,omitempty"`

	// Health is kept by the monitor in health.json (health.go).
	Health *Health `json:"-"`
}

// Container is a container as loaded from its directory.
type Container struct {
	Config
	State State
	Dir   string
}

// ShortID is the 12-character form of the ID.
func (c *Container) ShortID() string { return c.ID[:12] }
