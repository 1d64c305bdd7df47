// Package registry moves images between the store and container registries:
// pull, push, login and logout, speaking the distribution protocol through
// github.com/google/go-containerregistry (no hand-written registry HTTP).
//
// Names resolve as docker resolves them ("busybox" is
// docker.io/library/busybox:latest). Credentials come from the docker config
// file (~/.docker/config.json, or $DOCKER_CONFIG/config.json) and its
// credential helpers. Registries on localhost and 127.0.0.1 are spoken to over
// plain HTTP; Options.Insecure extends that (and skips TLS verification) to
// any registry.
//
// Everything fetched is verified before anything is named: manifests and
// configs against their digests, layer blobs against digest, size and the
// config's diff_ids as they stream into the store.
package registry
