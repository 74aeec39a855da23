package main

import (
	"cmp"
	"context"
	"log/slog"

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
// apps.
func openDocker(host, advertise string, getenv func(string) string, logger *slog.Logger) *docker.Driver {
	dk, err := docker.New(host, logger)
	if err != nil {
		logger.Info("docker driver unavailable", "error", err)
		return nil
	}
	if advertise == "" {
		advertise = docker.AdvertiseFor(cmp.Or(host, getenv("DOCKER_HOST")))
	}
	if advertise != "" {
		dk.SetAdvertise(advertise)
		logger.Info("docker instances on the engine's host", "advertise", advertise)
	}
	return dk
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
