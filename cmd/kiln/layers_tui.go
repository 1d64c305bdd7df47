package main

import (
	"errors"

	"github.com/kiln-build/kiln/imageview"
)

func runLayersTUI(name string, a *imageview.Analysis) error {
	return errors.New("-i: the interactive view is not built yet")
}
