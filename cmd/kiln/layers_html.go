package main

import (
	"fmt"
	"os"

	"github.com/kiln-build/kiln/imageview"
)

// writeLayersHTML writes the HTML report of `kiln layers --html FILE`.
func writeLayersHTML(file, name string, a *imageview.Analysis) error {
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("--html: %w", err)
	}
	if err := imageview.WriteHTML(f, name, a, humanSize); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	return f.Close()
}
