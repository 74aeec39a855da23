package docker

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
)

// LabelImageApp is set on every image BuildImage builds.
const LabelImageApp = "gantry.app"

// KeepDigests returns a keep function for Prune that keeps every image
// reference whose digest is one of refs' ("repo@sha256:…" or "sha256:…").
// It matches by digest, not by repository: a copy of an image in another
// registry is the same image on the engine.
func KeepDigests(refs ...string) func(ref string) bool {
	set := map[string]bool{}
	for _, r := range refs {
		if i := strings.LastIndexByte(r, '@'); i >= 0 {
			r = r[i+1:]
		}
		set[r] = true
	}
	return func(ref string) bool {
		if i := strings.LastIndexByte(ref, '@'); i >= 0 {
			ref = ref[i+1:]
		}
		return set[ref]
	}
}

// PruneResult says what Prune did.
type PruneResult struct {
	Removed    []string `json:"removed"`    // image references removed from the engine
	Kept       []string `json:"kept"`       // Gantry's image references that were kept
	Containers []string `json:"containers"` // names of exited Gantry containers removed with their image
}

// Prune removes from the engine Gantry's images that keep does not keep.
//
// Gantry's images are those BuildImage labelled, and those of repositories
// that a Gantry container (running or exited) was started from; nothing
// else on the engine is looked at. An image is kept when keep returns true
// for any of its repository@sha256:… references, when a running container
// uses it, or when it has no digest (never pushed: it came from elsewhere).
// keep must therefore answer for every environment on this engine (active
// and standby slots, and releases within retention), not only for the one
// being pruned: the images of one engine are shared by its environments.
// Exited Gantry containers of a removed image are removed first (they would
// hold it); running ones are never touched, and images are never forced.
func (d *Driver) Prune(ctx context.Context, keep func(ref string) bool) (PruneResult, error) {
	var res PruneResult
	cs, err := d.Client.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelApp))})
	if err != nil {
		return res, fmt.Errorf("prune: list containers: %w", err)
	}
	repos := map[string]bool{}
	inUse := map[string]bool{}                 // image IDs of running containers
	exited := map[string][]container.Summary{} // image ID → exited containers
	for _, c := range cs {
		if r := repositoryOf(c.Image); r != "" {
			repos[r] = true
		}
		if c.State == "running" || c.State == "restarting" || c.State == "paused" {
			inUse[c.ImageID] = true
		} else {
			exited[c.ImageID] = append(exited[c.ImageID], c)
		}
	}
	images, err := d.Client.ImageList(ctx, image.ListOptions{})
	if err != nil {
		return res, fmt.Errorf("prune: list images: %w", err)
	}
	for _, img := range images {
		ours := img.Labels[LabelImageApp] != ""
		for _, r := range append(append([]string{}, img.RepoDigests...), img.RepoTags...) {
			ours = ours || repos[repositoryOf(r)]
		}
		if !ours {
			continue
		}
		kept := inUse[img.ID] || len(img.RepoDigests) == 0
		for _, r := range img.RepoDigests {
			if keep(r) {
				kept = true
			}
		}
		if kept {
			res.Kept = append(res.Kept, img.RepoDigests...)
			continue
		}
		for _, c := range exited[img.ID] {
			if err := d.Client.ContainerRemove(ctx, c.ID, container.RemoveOptions{}); err != nil && !notFound(err) {
				return res, fmt.Errorf("prune: remove exited container %s: %w", shortID(c.ID), err)
			}
			if len(c.Names) > 0 {
				res.Containers = append(res.Containers, strings.TrimPrefix(c.Names[0], "/"))
			}
		}
		// Reference by reference: removing by ID refuses an image that is
		// in several repositories, and the last reference removes the image.
		var refs []string
		for _, r := range append(append([]string{}, img.RepoTags...), img.RepoDigests...) {
			if r != "<none>:<none>" && r != "<none>@<none>" {
				refs = append(refs, r)
			}
		}
		for _, r := range refs {
			if _, err := d.Client.ImageRemove(ctx, r, image.RemoveOptions{PruneChildren: true}); err != nil && !notFound(err) {
				return res, fmt.Errorf("prune: remove %s: %w", r, err)
			}
		}
		res.Removed = append(res.Removed, img.RepoDigests...)
		d.logger().Info("image pruned", attrImage, strings.Join(img.RepoDigests, ","))
	}
	sort.Strings(res.Removed)
	sort.Strings(res.Kept)
	return res, nil
}

// repositoryOf strips a reference's digest or tag: host:5000/shop/web:1.0
// and host:5000/shop/web@sha256:… both give host:5000/shop/web.
func repositoryOf(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		return ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}
