package deploy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Workers (services with http: false) take no traffic the router could
// switch: two sets of them run side by side, each taking jobs. So a slot
// that is set aside warm keeps only its web instances; its workers are
// stopped once the new ones are up (the driver's stop timeout lets each
// finish its current job), and started again before a rollback flips
// traffic back to that slot.

// stopOldWorkers stops the workers of slot, which traffic just left. A
// slot that mixes releases (after deploy --only) keeps them: the release
// each ran would be lost with its instances.
func (o *Orchestrator) stopOldWorkers(ctx context.Context, r *run, env *gantry.Environment, drv gantry.Driver, slot *gantry.Slot, m *gantry.Manifest) error {
	if slot == nil || m == nil {
		return nil
	}
	var names []string
	mixed := false
	for _, inst := range slot.Instances {
		if svc := m.Services[inst.Service]; svc != nil && !svc.HTTP {
			names = append(names, fmt.Sprintf("%s-%d", inst.Service, inst.Index))
		}
		if inst.ReleaseID != "" && inst.ReleaseID != slot.ReleaseID {
			mixed = true
		}
	}
	if len(names) == 0 {
		return nil
	}
	if mixed {
		return r.step(ctx, "keep-old-workers", fmt.Sprintf("slot %s mixes releases: its workers %s stay up while it is warm", slot.Name, strings.Join(names, ", ")), func() (string, error) { return "", nil })
	}
	return r.step(ctx, "stop-old-workers", fmt.Sprintf("slot %s (%s): %s, now that the new ones are up; the warm slot keeps its web instances", slot.Name, slot.Version, strings.Join(names, ", ")), func() (string, error) {
		return "", o.stopInstances(ctx, env, drv, slot, m, func(inst gantry.Instance) bool {
			svc := m.Services[inst.Service]
			return svc == nil || svc.HTTP
		})
	})
}

// startMissingWorkers starts again, by order group, the workers of a warm
// slot that stopped them when traffic left it.
func (o *Orchestrator) startMissingWorkers(ctx context.Context, r *run, env *gantry.Environment, drv gantry.Driver, slot *gantry.Slot, rel *gantry.Release, m *gantry.Manifest) error {
	have := map[string]bool{}
	for _, inst := range slot.Instances {
		have[inst.Service] = true
	}
	byOrder := map[int]*group{}
	var orders []int
	for _, svc := range m.ServicesInOrder() {
		if svc.HTTP || svc.Instances == 0 || have[svc.Name] {
			continue
		}
		g := byOrder[svc.Order]
		if g == nil {
			g = &group{order: svc.Order}
			byOrder[svc.Order] = g
			orders = append(orders, svc.Order)
		}
		g.parts = append(g.parts, part{svc: svc, rel: rel})
	}
	sort.Ints(orders)
	for _, n := range orders {
		g := *byOrder[n]
		if err := r.step(ctx, "start-workers", g.label()+" on warm slot "+slot.Name, func() (string, error) {
			msg, err := o.startGroup(ctx, env, drv, slot, m, g, nil)
			return msg, groupErr(g, err)
		}); err != nil {
			return err
		}
	}
	return nil
}
