package memdriver

import (
	"context"
	"sort"

	"github.com/gantry-dev/gantry"
)

var _ gantry.InstanceLister = (*Driver)(nil)

// ListInstances returns the instances started for app's environment env,
// running or not, as the process driver finds them by their identity
// files: what a server that died before saving a handle recovers by.
func (d *Driver) ListInstances(ctx context.Context, app, env string) ([]gantry.FoundInstance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []gantry.FoundInstance
	for _, in := range d.insts {
		if in.spec.App != app || in.spec.Env != env || in.state == gantry.InstanceGone {
			continue
		}
		out = append(out, gantry.FoundInstance{Instance: in.inst, Slot: in.spec.Slot, Running: in.state == gantry.InstanceRunning})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance.Handle < out[j].Instance.Handle })
	return out, nil
}
