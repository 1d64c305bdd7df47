package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runner/network"
)

// buildNetwork gives a build's RUN steps a network namespace of their own on
// the store's default bridge network, as docker build's default network:
// outbound traffic is masqueraded, the host's interfaces and its loopback
// services are out of reach. Its /etc/resolv.conf is the host's without
// loopback nameservers (docker's fallback servers when none is left).
func buildNetwork(root string, s *cache.Store) builder.NetworkFunc {
	return func(ctx context.Context) (*builder.BuildNetwork, error) {
		ns, err := network.Open(root)
		if err != nil {
			return nil, err
		}
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		id := "build-" + hex.EncodeToString(rnd[:])
		// The namespace is attached in the background while the first RUN
		// step's sandbox init starts in it (BuildNetwork.Ready).
		nsFile, ready, release, err := ns.AttachSelfInBackground(id, network.DefaultNetwork)
		if err != nil {
			return nil, err
		}
		bn := &builder.BuildNetwork{NS: nsFile, Release: release, Ready: ready}
		host, _ := os.ReadFile("/etc/resolv.conf")
		resolv, err := network.ResolvConf(host, network.DNSOptions{}, false)
		if err != nil || string(resolv) == string(host) {
			return bn, nil // the host's own file works from the namespace
		}
		dir, err := s.TempDir("resolv.")
		if err == nil {
			p := filepath.Join(dir, "resolv.conf")
			if err = os.WriteFile(p, resolv, 0o644); err == nil {
				bn.Files = map[string]string{"/etc/resolv.conf": p}
				bn.Release = func() error { return errors.Join(release(), os.RemoveAll(dir)) }
				return bn, nil
			}
			os.RemoveAll(dir)
		}
		return nil, errors.Join(err, release(), nsFile.Close())
	}
}
