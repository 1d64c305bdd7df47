package main

import "github.com/kiln-build/kiln/runner/container"

// healthSuffix is docker's health note in ps STATUS: " (healthy)",
// " (unhealthy)", " (health: starting)".
func healthSuffix(h *container.Health) string {
	if h == nil {
		return ""
	}
	switch h.Status {
	case container.HealthStarting:
		return " (health: starting)"
	case container.HealthHealthy, container.HealthUnhealthy:
		return " (" + h.Status + ")"
	}
	return ""
}
