package main

import "github.com/kiln-build/kiln/cmd/kiln/internal/format"

// jsonString is the templates' json function (docker's), for the commands
// that still parse their own templates (stats, events).
func jsonString(v any) (string, error) { return format.JSON(v) }
