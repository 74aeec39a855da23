package docker

import (
	"context"

	"github.com/gantry-dev/gantry"
)

var _ gantry.InstanceLister = (*Driver)(nil)

// ListInstances returns the containers Gantry started for app's
// environment env, found by their labels (Find): recovery adopts those of
// a slot its record keeps and stops the others, so that a container
// started just before the server died does not run unknown to the state.
func (d *Driver) ListInstances(ctx context.Context, app, env string) ([]gantry.FoundInstance, error) {
	if env == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "list instances of %s: an environment is required", app)
	}
	found, err := d.Find(ctx, app, env, "")
	if err != nil {
		return nil, err
	}
	out := make([]gantry.FoundInstance, 0, len(found))
	for _, f := range found {
		inst := f.Instance
		inst.ReleaseID = f.Release
		out = append(out, gantry.FoundInstance{Instance: inst, Slot: f.Slot, Running: f.Running})
	}
	return out, nil
}
