package main

import (
	"fmt"

	"github.com/kiln-build/kiln/imageview"
)

func writeLayersHTML(file, name string, a *imageview.Analysis) error {
	return fmt.Errorf("--html: not implemented yet")
}

func runLayersTUI(name string, a *imageview.Analysis) error {
	return fmt.Errorf("-i: not implemented yet")
}
