package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

var _ gantry.ReleaseImporter = (*Releases)(nil)

// ImportRelease records images built by an outside CI as a release: the
// commit's manifest, and for every service built with docker the image it
// names, checked in its registry by digest. Nothing is built.
func (s *Releases) ImportRelease(ctx context.Context, req gantry.ImportRequest) (*gantry.Release, error) {
	if s.Manifest == nil || s.CheckImage == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "this server cannot import image releases: it has no Docker support")
	}
	if req.Version == "" || req.Commit == "" || len(req.Images) == 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "an import needs --version, --commit and at least one --service NAME=REPO@sha256:…")
	}
	app, err := s.Store.FindApp(ctx, req.App)
	if err != nil {
		return nil, err
	}
	commit, raw, m, err := s.Manifest(ctx, app.Repo, req.Commit)
	if err != nil {
		return nil, err
	}
	if m.App != app.Name {
		return nil, gantry.Errorf(gantry.EINVALID, "gantry.yml at %s declares app %q, not %q", short(commit), m.App, app.Name)
	}
	arts := map[string]gantry.Artifact{}
	var names []string
	for name, svc := range m.Services {
		if svc.Docker != nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		ref, ok := req.Images[name]
		if !ok {
			return nil, gantry.Errorf(gantry.EINVALID, "service %s is built with docker at %s: give its image with --service %s=REPO@sha256:…", name, short(commit), name)
		}
		a, err := s.CheckImage(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("image of %s: %w", name, err)
		}
		arts[name] = a
	}
	for name := range req.Images {
		if _, ok := arts[name]; !ok {
			return nil, gantry.Errorf(gantry.EINVALID, "service %q is not a docker service of the manifest at %s (docker services: %s)", name, short(commit), strings.Join(names, ", "))
		}
	}
	if existing, err := s.Store.ListReleases(ctx, gantry.ReleaseFilter{App: app.Name, Limit: 1000}); err == nil {
		for _, r := range existing {
			if r.Version == req.Version {
				return nil, gantry.Errorf(gantry.ECONFLICT, "release %s of %s already exists (%s)", req.Version, app.Name, r.ID)
			}
		}
	}
	if err := s.keepSource(ctx, app, commit, arts); err != nil {
		return nil, err
	}
	var committed time.Time
	if s.CommitTime != nil {
		if committed, err = s.CommitTime(ctx, app.Repo, commit); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(raw)
	rel := &gantry.Release{
		ID: fmt.Sprintf("%s-%s", req.Version, short(commit)), App: app.Name, Version: req.Version, Commit: commit, CommittedAt: committed, Ref: req.Ref,
		Artifacts: arts, Manifest: raw, ManifestDigest: "sha256:" + hex.EncodeToString(sum[:]), Builder: req.Actor,
	}
	if err := s.Store.CreateRelease(ctx, rel); err != nil {
		return nil, err
	}
	return rel, nil
}
