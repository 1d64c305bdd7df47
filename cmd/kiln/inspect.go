package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cmd/kiln/internal/format"
	"github.com/kiln-build/kiln/runner/container"
)

func newInspectCommand(g *globals) *cobra.Command { return newInspectCommandOf(g, "") }

// newInspectCommandOf is `inspect`, or with a type `image inspect` and
// `container inspect`.
func newInspectCommandOf(g *globals, typ string) *cobra.Command {
	var f, platform string
	var size bool
	short := "Return low-level information on containers and images"
	if typ != "" {
		short = fmt.Sprintf("Display detailed information on one or more %ss", typ)
	}
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if typ != "" && typ != "image" && typ != "container" {
				return fmt.Errorf("%q is not a valid value for --type (image or container)", typ)
			}
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			// Like docker: a container with that name or ID wins over an
			// image; what is found is printed, then what is not is an error.
			cs := container.NewStore(s.Root())
			var objs []any
			var missing []error
			for _, a := range args {
				if typ != "image" {
					if c, err := cs.Get(a); err == nil {
						objs = append(objs, inspectContainer(c, s, size))
						continue
					} else if typ == "container" {
						missing = append(missing, err)
						continue
					}
				}
				o, err := inspectImage(s, a, platform)
				if err != nil {
					if typ == "" && errors.Is(err, cache.ErrNotFound) {
						err = fmt.Errorf("no such object: %s", a)
					}
					missing = append(missing, err)
					continue
				}
				objs = append(objs, o)
			}
			if err := format.Inspect(cmd.OutOrStdout(), f, objs); err != nil {
				return err
			}
			return errors.Join(missing...)
		},
	}
	cmd.Flags().StringVarP(&f, "format", "f", "", "format the output using the given Go template, or json")
	if typ == "" {
		cmd.Flags().StringVar(&typ, "type", "", "only inspect objects of this type (container or image)")
	}
	if typ != "image" {
		cmd.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes if the type is container")
	}
	if typ != "container" {
		cmd.Flags().StringVar(&platform, "platform", "", "the platform's image of a multi-platform image (default: this machine's)")
	}
	return cmd
}

// imageInspect is docker's image inspect shape.
type imageInspect struct {
	ID           string                          `json:"Id"`
	RepoTags     []string                        `json:"RepoTags"`
	RepoDigests  []string                        `json:"RepoDigests"`
	Parent       string                          `json:"Parent"`
	Comment      string                          `json:"Comment"`
	Created      string                          `json:"Created"`
	Author       string                          `json:"Author"`
	Config       dockerspec.DockerOCIImageConfig `json:"Config"`
	Architecture string                          `json:"Architecture"`
	Variant      string                          `json:"Variant,omitempty"`
	Os           string                          `json:"Os"`
	Size         int64                           `json:"Size"`
	GraphDriver  graphDriver                     `json:"GraphDriver"`
	RootFS       rootFS                          `json:"RootFS"`
	Metadata     map[string]any                  `json:"Metadata"`
}

type graphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

type rootFS struct {
	Type   string          `json:"Type"`
	Layers []digest.Digest `json:"Layers"`
}

func inspectImage(s *cache.Store, ref, platform string) (*imageInspect, error) {
	id, shown, err := resolveInspected(s, ref, platform) // platform.go
	if err != nil {
		return nil, err
	}
	_, raw, err := s.Image(id)
	if err != nil {
		return nil, err
	}
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(raw, &img); err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	names, err := s.NamesOf(shown)
	if err != nil {
		return nil, err
	}
	tags := []string{}
	for _, n := range names {
		if !strings.Contains(n, "@") {
			tags = append(tags, cache.FamiliarName(n))
		}
	}
	repoDigests := []string{}
	ds, err := s.RepoDigests(id)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		repoDigests = append(repoDigests, cache.FamiliarName(d))
	}
	size, err := imageSize(s, img.RootFS.DiffIDs)
	if err != nil {
		return nil, err
	}
	created := ""
	if img.Created != nil {
		created = img.Created.Format(time.RFC3339Nano)
	}
	lowers, err := s.Lowers(img.RootFS.DiffIDs)
	if err != nil {
		return nil, err
	}
	gd := graphDriver{Name: "overlay2", Data: map[string]string{}}
	if len(lowers) > 0 {
		gd.Data["UpperDir"] = lowers[0]
		if len(lowers) > 1 {
			gd.Data["LowerDir"] = strings.Join(lowers[1:], ":")
		}
	}
	layers := img.RootFS.DiffIDs
	if layers == nil {
		layers = []digest.Digest{}
	}
	return &imageInspect{
		ID: shown.String(), RepoTags: tags, RepoDigests: repoDigests, Created: created, Author: img.Author,
		Config: img.Config, Architecture: img.Architecture, Variant: img.Variant, Os: img.OS, Size: size,
		GraphDriver: gd, RootFS: rootFS{Type: "layers", Layers: layers},
		Metadata: map[string]any{"LastTagTime": "0001-01-01T00:00:00Z"},
	}, nil
}
