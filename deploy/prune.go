package deploy

import (
	"context"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry"
)

// DefaultRetainReleases is how many releases per environment keep their
// images when none is configured.
const DefaultRetainReleases = 5

// PruneImages removes images that no environment needs any more, on every
// runtime that can prune. An image is kept when any environment of any app
// (all of them share the engine) runs it in its active or standby slot, or
// deployed it among its last keep releases: a prune for one environment can
// never take another one's rollback image.
func (o *Orchestrator) PruneImages(ctx context.Context, keep int) ([]string, error) {
	if keep <= 0 {
		keep = DefaultRetainReleases
	}
	digests, err := o.imagesInUse(ctx, keep)
	if err != nil {
		return nil, err
	}
	keepRef := func(ref string) bool {
		_, digest, ok := strings.Cut(ref, "@")
		return !ok || digests[digest]
	}
	var removed []string
	names := make([]string, 0, len(o.Drivers))
	for n := range o.Drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p, ok := o.Drivers[n].(gantry.ImagePruner)
		if !ok {
			continue
		}
		r, err := p.PruneImages(ctx, keepRef)
		if err != nil {
			return removed, err
		}
		removed = append(removed, r...)
	}
	o.logger().Info("pruned images", "removed", len(removed), "kept_digests", len(digests), "retain_releases", keep)
	return removed, nil
}

// imagesInUse returns the digests of the image artifacts that must stay.
func (o *Orchestrator) imagesInUse(ctx context.Context, keep int) (map[string]bool, error) {
	digests := map[string]bool{}
	seenRelease := map[string]bool{} // app/id: each release is read once
	addRelease := func(app, id string) error {
		if seenRelease[app+"/"+id] {
			return nil
		}
		seenRelease[app+"/"+id] = true
		rel, err := o.Store.FindRelease(ctx, app, id)
		if gantry.ErrorCode(err) == gantry.ENOTFOUND {
			return nil
		} else if err != nil {
			return err
		}
		for _, a := range rel.Artifacts {
			if a.Kind == gantry.ArtifactImage {
				digests[a.Digest] = true
			}
		}
		return nil
	}
	apps, err := o.Store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	for _, app := range apps {
		envs, err := o.Store.ListEnvironments(ctx, app.Name)
		if err != nil {
			return nil, err
		}
		for _, env := range envs {
			for _, s := range env.Slots {
				if s.ReleaseID != "" && (s.State == gantry.SlotActive || s.State == gantry.SlotStandby || s.State == gantry.SlotStarting || len(s.Instances) > 0) {
					if err := addRelease(app.Name, s.ReleaseID); err != nil {
						return nil, err
					}
				}
			}
			ds, err := o.Store.ListDeployments(ctx, gantry.DeploymentFilter{App: app.Name, Env: env.Name, Limit: 1000})
			if err != nil {
				return nil, err
			}
			seen := map[string]bool{}
			for _, d := range ds {
				if len(seen) >= keep {
					break
				}
				if d.ReleaseID == "" || seen[d.ReleaseID] || d.State != gantry.DeploymentSucceeded {
					continue
				}
				seen[d.ReleaseID] = true
				if err := addRelease(app.Name, d.ReleaseID); err != nil {
					return nil, err
				}
			}
		}
	}
	return digests, nil
}
