package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/template"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/container"
)

func newInspectCommand(g *globals) *cobra.Command {
	var format, typ, platform string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on containers and images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := cache.Open(g.root)
			if err != nil {
				return err
			}
			defer s.Close()
			// Like docker: a container with that name or ID wins over an image.
			cs := container.NewStore(s.Root())
			var objs []any
			for _, a := range args {
				if typ != "image" {
					if c, err := cs.Get(a); err == nil {
						objs = append(objs, inspectContainer(c, s, size))
						continue
					} else if typ == "container" {
						return err
					}
				}
				o, err := inspectImage(s, a, platform)
				if err != nil {
					return err
				}
				objs = append(objs, o)
			}
			return writeInspect(cmd.OutOrStdout(), objs, format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output using the given Go template")
	cmd.Flags().StringVar(&typ, "type", "", "only inspect objects of this type (container or image)")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes if the type is container")
	cmd.Flags().StringVar(&platform, "platform", "", "the platform's image of a multi-platform image (default: this machine's)")
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
		tags = append(tags, cache.FamiliarName(n))
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
		ID: shown.String(), RepoTags: tags, RepoDigests: []string{}, Created: created, Author: img.Author,
		Config: img.Config, Architecture: img.Architecture, Variant: img.Variant, Os: img.OS, Size: size,
		GraphDriver: gd, RootFS: rootFS{Type: "layers", Layers: layers},
		Metadata: map[string]any{"LastTagTime": "0001-01-01T00:00:00Z"},
	}, nil
}

// writeInspect prints objects as an indented JSON array, or each through a Go
// template as `docker inspect --format` does.
func writeInspect(w io.Writer, objs []any, format string) error {
	if format == "" {
		data, err := json.MarshalIndent(objs, "", "    ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", data)
		return err
	}
	tmpl, err := template.New("format").Funcs(template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"join":  strings.Join,
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"title": strings.Title, //nolint:staticcheck // docker offers it too
		"split": strings.Split,
	}).Parse(format)
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	for _, o := range objs {
		// Templates see the JSON field names, as docker's do.
		data, err := json.Marshal(o)
		if err != nil {
			return err
		}
		// Numbers stay as written (json.Number): 16777216, not 1.6777216e+07.
		var generic any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&generic); err != nil {
			return err
		}
		if err := tmpl.Execute(w, generic); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(w)
	}
	return nil
}
