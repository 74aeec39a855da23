package docker

import (
	"context"
	"fmt"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/docker/registry"
)

// CopyImage copies the image src (repository@sha256:…) into dstRepo
// (registry host/path, e.g. 127.0.0.1:5001/shop/web) under the same digest,
// without an engine, and returns dstRepo@sha256:… once the destination
// serves a manifest that hashes to that digest. Promotion between
// environments whose registries differ uses it: prod runs the bytes that
// test ran. Copying an image that is already there only checks it.
func CopyImage(ctx context.Context, src, dstRepo string) (string, error) {
	var c registry.Client
	return c.Copy(ctx, src, dstRepo)
}

// CopyImage is the package's CopyImage through the driver's registry client.
func (d *Driver) CopyImage(ctx context.Context, src, dstRepo string) (string, error) {
	return d.Registry.Copy(ctx, src, dstRepo)
}

// Repository is where a service's images live in an environment's registry
// (runtime.registry): <registry>/<service>. Release builds push there, and
// promotion copies there.
func Repository(registry, service string) string {
	return strings.TrimRight(registry, "/") + "/" + service
}

// ImageIn returns the artifact a, as it must be deployed to an environment
// whose registry is reg: unchanged when its image already lives there, else
// copied by digest into Repository(reg, service) and checked on arrival. The
// digest never changes; only the repository the engine pulls from does.
// An empty reg means the environment has no registry of its own: a as is.
func (d *Driver) ImageIn(ctx context.Context, a gantry.Artifact, reg, service string) (gantry.Artifact, error) {
	if a.Kind != gantry.ArtifactImage {
		return gantry.Artifact{}, gantry.Errorf(gantry.EINVALID, "service %s: artifact of kind %q is not an image", service, a.Kind)
	}
	if reg == "" || strings.HasPrefix(a.Image, strings.TrimRight(reg, "/")+"/") {
		return a, nil
	}
	ref, err := d.CopyImage(ctx, a.Image, Repository(reg, service))
	if err != nil {
		return gantry.Artifact{}, err
	}
	a.Image = ref
	return a, nil
}

// ImportImage checks an image built elsewhere (an outside CI) before it is
// recorded in a release: ref must be repository@sha256:…, and its registry
// must serve a manifest under that digest whose bytes hash to it. It
// returns the image artifact to record.
func (d *Driver) ImportImage(ctx context.Context, ref string) (gantry.Artifact, error) {
	r, err := registry.ParseRef(ref)
	if err != nil {
		return gantry.Artifact{}, err
	}
	if _, _, err := d.Registry.Manifest(ctx, r); err != nil {
		return gantry.Artifact{}, fmt.Errorf("import %s: %w", ref, err)
	}
	return gantry.Artifact{Kind: gantry.ArtifactImage, Image: r.String(), Digest: r.Digest}, nil
}
