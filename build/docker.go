package build

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// ImageRequest is what the Builder asks of its Images function for one
// service built with docker. The builder decides where the image goes and
// how it is tagged; Images builds it from Dir (the clean export of the
// commit, never a working tree), tags it, pushes every tag, and returns the
// artifact by digest (Kind "image", Image "repository@sha256:…").
type ImageRequest struct {
	App     string
	Service string
	Version string
	Commit  string
	// Dir is the export; Docker's Dockerfile and Context are relative to it.
	Dir    string
	Docker gantry.DockerSpec
	// Repository is <registry>/<service>, e.g. 127.0.0.1:5000/shop/web.
	Repository string
	// Tags are <version>, git-<sha7> and latest.
	Tags     []string
	Labels   map[string]string
	Progress io.Writer
}

// ImageRegistry returns the registry a release's images are pushed to: that
// of the environment where releases enter (one without promote_from), the
// first by name among those that declare a registry; failing that, the first
// environment with a registry. Promotion copies the image by digest to the
// registries of the environments that follow.
func ImageRegistry(m *gantry.Manifest) (string, error) {
	names := make([]string, 0, len(m.Environments))
	for name, e := range m.Environments {
		if e != nil && e.Runtime.Registry != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if m.Environments[name].PromoteFrom == "" {
			return strings.TrimRight(m.Environments[name].Runtime.Registry, "/"), nil
		}
	}
	if len(names) > 0 {
		return strings.TrimRight(m.Environments[names[0]].Runtime.Registry, "/"), nil
	}
	return "", gantry.Errorf(gantry.EINVALID, "services built with docker need a registry to push to: no environment declares runtime.registry (set it to host:port/%s where releases enter; images built elsewhere come in with gantry release import)", m.App)
}

var badTagChars = lazyre.New(`[^A-Za-z0-9_.-]`)

// ImageTags are the tags of a release's image: its version (made a valid
// tag: 1.0.0+meta becomes 1.0.0-meta), git-<sha7> and latest. Deploys never
// use them; they are for people and for other tools.
func ImageTags(version, commit string) []string {
	v := badTagChars.ReplaceAllString(version, "-")
	v = strings.TrimLeft(v, ".-")
	if len(v) > 128 {
		v = v[:128]
	}
	sha := commit
	if len(sha) > 7 {
		sha = sha[:7]
	}
	tags := []string{}
	if v != "" {
		tags = append(tags, v)
	}
	return append(tags, "git-"+sha, "latest")
}

// buildImage builds a docker service through b.Images.
// The image's labels are the service's own version (the release's when it
// has none) and name: nothing that changes with every commit, so that an
// unchanged service gets the image it had, from the engine's build cache,
// with the digest it had (a redeploy then leaves it running). The tags
// say the release's version and commit.
func (b *Builder) buildImage(ctx context.Context, p *progress, log *slog.Logger, dir string, m *gantry.Manifest, svc *gantry.Service, version, own, commit string) (gantry.Artifact, error) {
	registry, err := ImageRegistry(m)
	if err != nil {
		return gantry.Artifact{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	req := ImageRequest{
		App: m.App, Service: svc.Name, Version: version, Commit: commit,
		Dir: dir, Docker: *svc.Docker,
		Repository: registry + "/" + svc.Name,
		Tags:       ImageTags(version, commit),
		Labels: map[string]string{
			"org.opencontainers.image.version": cmp.Or(own, version),
			"gantry.service":                   svc.Name,
		},
		Progress: newLineWriter(p.w, svc.Name+" | ", tailLines),
	}
	start := time.Now()
	p.stepf("%s: docker build of %s (dockerfile %s, context %s), tags %s", svc.Name, req.Repository,
		svc.Docker.Dockerfile, svc.Docker.Context, strings.Join(req.Tags, ", "))
	a, err := b.Images(ctx, req)
	if lw, ok := req.Progress.(interface{ Flush() }); ok {
		lw.Flush()
	}
	elapsed := time.Since(start).Round(time.Millisecond)
	if err != nil {
		log.Warn("image build failed", logService, svc.Name, logElapsed, elapsed, "error", err)
		return gantry.Artifact{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	if a.Kind != gantry.ArtifactImage || a.Digest == "" || !strings.HasSuffix(a.Image, "@"+a.Digest) {
		return gantry.Artifact{}, gantry.Errorf(gantry.EINTERNAL, "service %s: the image builder returned %+v, not an image by digest", svc.Name, a)
	}
	log.Info("image built", logService, svc.Name, logDigest, a.Digest, logElapsed, elapsed)
	p.stepf("%s: image %s in %s", svc.Name, a.Image, elapsed)
	return a, nil
}
