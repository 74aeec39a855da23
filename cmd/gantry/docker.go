package main

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/build"
	"github.com/gantry-dev/gantry/driver/docker"
)

// dockerDriver is the Docker driver with the abilities the orchestrator
// finds by type assertion: placing an image in an environment's registry
// (copied by digest on promotion) and pruning unused images.
type dockerDriver struct{ *docker.Driver }

var (
	_ gantry.ImagePlacer = dockerDriver{}
	_ gantry.ImagePruner = dockerDriver{}
)

func (d dockerDriver) PlaceImage(ctx context.Context, a gantry.Artifact, to gantry.ImagePlace) (gantry.Artifact, error) {
	if to.Runtime.Registry == "" {
		return a, nil
	}
	return d.ImageIn(ctx, a, to.Runtime.Registry, to.Service)
}

func (d dockerDriver) PruneImages(ctx context.Context, keep func(ref string) bool) ([]string, error) {
	res, err := d.Prune(ctx, keep)
	return res.Removed, err
}

// openDocker connects to the Docker Engine at host ("" for $DOCKER_HOST or
// the default socket), whose instances listen on advertise (default: the
// address of a tcp:// engine). A server without Docker still runs process
// apps, but an engine or an address given on the command line that is
// malformed is a usage error: a server that quietly runs without the
// driver it was told to use fails only at the first deploy, far from the
// typo. An engine that does not answer is not checked here; the first
// deploy to it fails.
func openDocker(host, advertise string, getenv func(string) string, logger *slog.Logger) (*docker.Driver, error) {
	if advertise != "" && !validAdvertise(advertise) {
		return nil, gantry.Errorf(gantry.EINVALID, "--docker-advertise %q: want the address of the engine's host, an IP or a host name without a port or scheme (e.g. 10.0.0.30)", advertise)
	}
	dk, err := docker.New(host, logger)
	if err != nil && host != "" {
		return nil, gantry.Errorf(gantry.EINVALID, "--docker-host %q: %v; want unix:///path/to/docker.sock or tcp://HOST:PORT", host, err)
	} else if err != nil {
		logger.Info("docker driver unavailable", "error", err)
		return nil, nil
	}
	if advertise == "" {
		advertise = docker.AdvertiseFor(cmp.Or(host, getenv("DOCKER_HOST")))
	}
	if advertise != "" {
		dk.SetAdvertise(advertise)
		logger.Info("docker instances on the engine's host", "advertise", advertise)
	}
	return dk, nil
}

// validAdvertise says whether addr is an IP or a host name, which the
// driver sets as HOST and joins with a port for GANTRY_LISTEN.
func validAdvertise(addr string) bool {
	if net.ParseIP(addr) != nil {
		return true
	}
	for _, label := range strings.Split(addr, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// dockerImages builds a service's image with the driver's engine.
func dockerImages(d *docker.Driver) func(context.Context, build.ImageRequest) (gantry.Artifact, error) {
	return func(ctx context.Context, r build.ImageRequest) (gantry.Artifact, error) {
		return d.BuildImage(ctx, docker.ImageBuild{
			Dir: r.Dir, Dockerfile: r.Docker.Dockerfile, Context: r.Docker.Context,
			Target: r.Docker.Target, Args: r.Docker.Args,
			Repository: r.Repository, Tags: r.Tags, App: r.App, Labels: r.Labels, Progress: r.Progress,
		})
	}
}
