package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cmd/kiln/internal/filter"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
	"github.com/kiln-build/kiln/runner/container"
	"github.com/kiln-build/kiln/runner/network"
)

// psRow is one container as `ps --format` templates see it (docker's names).
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, Status, State, Size, Names, Labels, Mounts, Networks, LocalVolumes string
	// HealthStatus is "healthy", "unhealthy" or "starting"; empty without a healthcheck.
	HealthStatus string
	// Platform is the image's; nil when the image is gone.
	Platform *psPlatform

	labels map[string]string
}

// psPlatform prints as "os/arch[/variant]" and marshals as image-spec's Platform, as docker's.
type psPlatform struct{ ocispec.Platform }

func (p psPlatform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Label is docker's {{.Label "key"}}.
func (r psRow) Label(name string) string { return r.labels[name] }

// psTime is how docker prints CreatedAt in listings.
const psTime = "2006-01-02 15:04:05 -0700 MST"

var psSpec = format.Spec{
	Table: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
	Quiet: "{{.ID}}",
	Headers: map[string]string{
		"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT", "RunningFor": "CREATED",
		"Ports": "PORTS", "Status": "STATUS", "State": "STATE", "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS",
		"Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
		"HealthStatus": "HEALTH STATUS",
	},
}

func newPsCommand(g *globals) *cobra.Command {
	var all, size, noTrunc, latest bool
	var o format.Options
	var filters []string
	var last int
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fa, err := filter.Parse(filters)
			if err != nil {
				return err
			}
			cs := container.NewStore(storeRoot(g))
			list, err := cs.List()
			if err != nil {
				return err
			}
			var s *cache.Store // opened when a filter or --size needs images
			openStore := func() (*cache.Store, error) {
				if s == nil {
					s, err = cache.Open(g.root)
				}
				return s, err
			}
			defer func() {
				if s != nil {
					s.Close()
				}
			}()
			if list, err = filter.Apply(fa, psFilters(list, openStore), list); err != nil {
				return err
			}
			if latest {
				last = 1
			}
			// As docker: only running containers unless -a, -n or a status filter.
			if !all && last <= 0 && len(fa.Get("status")) == 0 {
				list = slices.DeleteFunc(list, func(c *container.Container) bool { return !c.State.Running && !c.State.Restarting })
			}
			if last > 0 && len(list) > last {
				list = list[:last]
			}
			var imageSizes func(c *container.Container) int64
			if size {
				s, err := openStore()
				if err != nil {
					return err
				}
				imageSizes = func(c *container.Container) int64 {
					n, _ := imageSize(s, c.Layers)
					return n
				}
			}
			rows := make([]psRow, 0, len(list))
			for _, c := range list {
				row := newPsRow(c, noTrunc, imageSizes)
				if s, err := openStore(); err == nil {
					if img, _, err := s.Image(c.Image); err == nil {
						row.Platform = &psPlatform{ocispec.Platform{OS: img.OS, Architecture: img.Architecture, Variant: img.Variant}}
					}
				}
				rows = append(rows, row)
			}
			spec := psSpec
			if size {
				spec.Table += `\t{{.Size}}`
			}
			return format.Write(cmd.OutOrStdout(), spec, o, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "only display container IDs")
	f.BoolVarP(&size, "size", "s", false, "display total file sizes")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&latest, "latest", "l", false, "show the latest created container")
	f.IntVarP(&last, "last", "n", -1, "show n last created containers")
	f.StringVar(&o.Format, "format", "", "format output: table, table TEMPLATE, json or a Go template")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided (id, name, label, status, exited, ancestor, before, since, volume, network)")
	return cmd
}

// psFilters are the keys `ps --filter` takes; each is one line.
func psFilters(all []*container.Container, openStore func() (*cache.Store, error)) filter.Keys[*container.Container] {
	type C = *container.Container
	created := func(c C) time.Time { return c.Created }
	find := func(ref string) (time.Time, error) {
		for _, c := range all {
			if c.ID == ref || c.Name == ref || strings.HasPrefix(c.ID, ref) {
				return c.Created, nil
			}
		}
		return time.Time{}, fmt.Errorf("no such container: %s", ref)
	}
	return filter.Keys[C]{
		"id":    filter.Prefix(func(c C) string { return c.ID }),
		"name":  filter.Substring(func(c C) string { return c.Name }),
		"label": filter.Label(func(c C) map[string]string { return c.Config.Config.Labels }),
		"status": {Parse: func(v string) (filter.Pred[C], error) {
			if !slices.Contains([]string{"created", "restarting", "running", "removing", "paused", "exited", "dead"}, v) {
				return nil, fmt.Errorf("not a container status")
			}
			return func(c C) bool { return c.State.Status == v }, nil
		}},
		"exited": {Parse: func(v string) (filter.Pred[C], error) {
			code, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("not an exit code")
			}
			return func(c C) bool { return c.State.Status == "exited" && c.State.ExitCode == code }, nil
		}},
		"ancestor": {Parse: func(v string) (filter.Pred[C], error) { return ancestorPred(v, openStore) }},
		"before":   filter.Before(created, find),
		"since":    filter.Since(created, find),
		"volume": {Parse: func(v string) (filter.Pred[C], error) {
			return func(c C) bool {
				return slices.ContainsFunc(c.Mounts, func(m container.MountPoint) bool { return m.Name == v || m.Destination == v })
			}, nil
		}},
		"network": {Parse: func(v string) (filter.Pred[C], error) {
			return func(c C) bool { return slices.Contains(containerNetworks(c), v) || containerNetworkIDPrefix(c, v) }, nil
		}},
		"health": {Parse: func(v string) (filter.Pred[C], error) {
			if !slices.Contains([]string{container.HealthStarting, container.HealthHealthy, container.HealthUnhealthy, container.HealthNone}, v) {
				return nil, fmt.Errorf("not a health status (starting, healthy, unhealthy or none)")
			}
			return func(c C) bool {
				if c.State.Health == nil {
					return v == container.HealthNone
				}
				return c.State.Health.Status == v
			}, nil
		}},
	}
}

// ancestorPred matches containers of an image (name or ID) or of an image
// built on it, as docker's ancestor=.
func ancestorPred(v string, openStore func() (*cache.Store, error)) (filter.Pred[*container.Container], error) {
	s, err := openStore()
	if err != nil {
		return nil, err
	}
	id, err := s.Resolve(v)
	if err != nil {
		// docker matches nothing for an image it does not know.
		return func(*container.Container) bool { return false }, nil
	}
	img, _, err := s.Image(id)
	if err != nil {
		return nil, err
	}
	return func(c *container.Container) bool {
		if c.Image == id {
			return true
		}
		child, _, err := s.Image(c.Image)
		return err == nil && builtOn(child, img)
	}, nil
}

// builtOn reports whether child was built from base: base's layers and
// history are the start of child's, and child has more history.
func builtOn(child, base ocispec.Image) bool {
	cl, bl, ch, bh := child.RootFS.DiffIDs, base.RootFS.DiffIDs, child.History, base.History
	if len(ch) <= len(bh) || len(cl) < len(bl) || !slices.Equal(cl[:len(bl)], bl) {
		return false
	}
	for i := range bh {
		if bh[i].CreatedBy != ch[i].CreatedBy || bh[i].EmptyLayer != ch[i].EmptyLayer ||
			(bh[i].Created == nil) != (ch[i].Created == nil) || (bh[i].Created != nil && !bh[i].Created.Equal(*ch[i].Created)) {
			return false
		}
	}
	return true
}

// containerNetworks names the networks a container is attached to, or its network mode.
func containerNetworks(c *container.Container) []string {
	atts, _ := c.Attachments()
	var names []string
	for _, a := range atts {
		names = append(names, a.Network)
	}
	if len(names) == 0 && c.HostConfig.NetworkMode != "" {
		names = append(names, c.HostConfig.NetworkMode)
	}
	return names
}

func containerNetworkIDPrefix(c *container.Container, id string) bool {
	for _, e := range c.NetworkSettings().Networks {
		if e != nil && id != "" && strings.HasPrefix(e.NetworkID, id) {
			return true
		}
	}
	return false
}

func newPsRow(c *container.Container, noTrunc bool, imageSize func(*container.Container) int64) psRow {
	id := c.ID
	command := strings.Join(append([]string{c.Path}, c.Args...), " ")
	if !noTrunc {
		id = c.ShortID()
		if r := []rune(command); len(r) > 20 {
			command = string(r[:19]) + "…"
		}
	}
	labels := []string{}
	for k, v := range c.Config.Config.Labels {
		labels = append(labels, k+"="+v)
	}
	slices.Sort(labels)
	mounts := []string{}
	vols := 0
	for _, m := range c.Mounts {
		n := m.Name
		if n == "" {
			n = m.Source
		}
		if m.Type == "volume" {
			vols++
		}
		mounts = append(mounts, n)
	}
	row := psRow{
		ID: id, Image: c.ImageName, Command: strconv.Quote(command),
		CreatedAt: c.Created.Local().Format(psTime), RunningFor: ago(c.Created),
		Ports: portsText(c), Status: statusText(c.State), State: c.State.Status, Names: c.Name,
		Labels: strings.Join(labels, ","), Mounts: strings.Join(mounts, ","), Networks: strings.Join(containerNetworks(c), ","),
		LocalVolumes: strconv.Itoa(vols), labels: c.Config.Config.Labels,
	}
	if h := c.State.Health; h != nil {
		row.HealthStatus = h.Status
	}
	if imageSize != nil {
		rw := c.SizeRw()
		row.Size = fmt.Sprintf("%s (virtual %s)", humanSize(rw), humanSize(rw+imageSize(c)))
	}
	return row
}

// portsText is docker's PORTS column: "0.0.0.0:8080->80/tcp, 443/tcp".
func portsText(c *container.Container) string {
	if !c.State.Running && !c.State.Restarting {
		return ""
	}
	ports := c.Ports()
	if ports == nil {
		ports = network.PortMap{}
	}
	for k := range c.Config.Config.ExposedPorts {
		if _, ok := ports[k]; !ok {
			ports[k] = nil
		}
	}
	var parts []string
	for _, key := range network.SortedPorts(ports) {
		if len(ports[key]) == 0 {
			parts = append(parts, key)
		}
		for _, b := range ports[key] {
			parts = append(parts, net.JoinHostPort(b.HostIP, b.HostPort)+"->"+key)
		}
	}
	return strings.Join(parts, ", ")
}

// statusText is docker's human status: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created".
func statusText(s container.State) string {
	since := func(t time.Time) string { return strings.TrimSuffix(ago(t), " ago") }
	switch s.Status {
	case "running":
		return "Up " + since(s.StartedAt) + healthSuffix(s.Health)
	case "paused":
		return "Up " + since(s.StartedAt) + " (Paused)"
	case "restarting":
		return fmt.Sprintf("Restarting (%d) %s", s.ExitCode, ago(s.FinishedAt))
	case "exited":
		return fmt.Sprintf("Exited (%d) %s", s.ExitCode, ago(s.FinishedAt))
	case "created":
		return "Created"
	}
	return s.Status
}
