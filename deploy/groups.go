package deploy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// A rollout starts a candidate's services by order group, lowest first, and
// waits until a group is healthy before it starts the next: a group may
// depend on the ones before it (a worker draining a queue before the web
// that fills it, an API before its front end).

// part is one service of a rollout and the release whose artifact it runs.
// Every part runs the deployed release, except with --only: then the other
// services keep the release they run on the active slot.
type part struct {
	svc *gantry.Service
	rel *gantry.Release
}

// group is one order group of a rollout.
type group struct {
	order int
	parts []part
}

func (g group) names() string {
	var ns []string
	for _, p := range g.parts {
		ns = append(ns, p.svc.Name)
	}
	return strings.Join(ns, ", ")
}

func (g group) label() string { return fmt.Sprintf("group %d: %s", g.order, g.names()) }

func (g group) has(service string) bool {
	for _, p := range g.parts {
		if p.svc.Name == service {
			return true
		}
	}
	return false
}

// plan is what a rollout starts: its groups in ascending order, and a
// manifest whose services are the definitions the parts run (for --only, a
// mix of the deployed release's and the active release's).
type plan struct {
	groups []group
	m      *gantry.Manifest
	only   string
	// keep are the services left running because the release would start
	// them as they run (the restart strategy); nil for a full rollout.
	keep map[string]bool
}

// makePlan groups the services of m. With only, every other service keeps
// the release its instances run on active (per instance, so a slot that is
// already a mix stays one).
func (o *Orchestrator) makePlan(ctx context.Context, rel *gantry.Release, m *gantry.Manifest, active *gantry.Slot, only string, keep map[string]bool) (*plan, error) {
	services := map[string]*gantry.Service{}
	var parts []part
	if only == "" && len(keep) == 0 {
		for _, s := range m.ServicesInOrder() {
			parts = append(parts, part{svc: s, rel: rel})
			services[s.Name] = s
		}
	} else {
		if only != "" && m.Services[only] == nil {
			return nil, gantry.Errorf(gantry.EINVALID, "--only %s: release %s has no service %q (services: %s)", only, rel.Version, only, strings.Join(serviceNames(m), ", "))
		}
		if only != "" && (active == nil || len(active.Instances) == 0) {
			return nil, gantry.Errorf(gantry.EINVALID, "--only %s: nothing runs on this environment yet; deploy the whole release first", only)
		}
		cache := map[string]*gantry.Release{}
		manifests := map[string]*gantry.Manifest{}
		for _, s := range m.ServicesInOrder() {
			if s.Name == only || (only == "" && !keep[s.Name]) {
				parts = append(parts, part{svc: s, rel: rel})
				services[s.Name] = s
				continue
			}
			id := active.ReleaseID
			for _, inst := range active.Instances {
				if inst.Service == s.Name && inst.ReleaseID != "" {
					id = inst.ReleaseID
					break
				}
			}
			base, ok := cache[id]
			if !ok {
				r, err := o.Store.FindRelease(ctx, rel.App, id)
				if err != nil {
					return nil, err
				}
				bm, err := o.manifestOf(r)
				if err != nil {
					return nil, err
				}
				base, cache[id], manifests[id] = r, r, bm
			}
			bs := manifests[id].Services[s.Name]
			if bs == nil {
				return nil, gantry.Errorf(gantry.EINVALID, "--only %s: service %s is new in release %s and runs nowhere yet; deploy the whole release", only, s.Name, rel.Version)
			}
			parts = append(parts, part{svc: bs, rel: base})
			services[s.Name] = bs
		}
	}
	mixed := *m
	mixed.Services = services
	p := &plan{m: &mixed, only: only, keep: keep}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].svc.Order < parts[j].svc.Order })
	for _, pt := range parts {
		if n := len(p.groups); n > 0 && p.groups[n-1].order == pt.svc.Order {
			p.groups[n-1].parts = append(p.groups[n-1].parts, pt)
			continue
		}
		p.groups = append(p.groups, group{order: pt.svc.Order, parts: []part{pt}})
	}
	return p, nil
}

func serviceNames(m *gantry.Manifest) []string {
	var ns []string
	for _, s := range m.ServicesInOrder() {
		ns = append(ns, s.Name)
	}
	return ns
}

func (p *plan) orders() string {
	var s []string
	for _, g := range p.groups {
		s = append(s, fmt.Sprintf("%d (%s)", g.order, g.names()))
	}
	return strings.Join(s, " → ")
}

// describe is the journal's record of a plan, for people: a paused
// rollout resumes from the deployment's typed fields, never from this.
func (p *plan) describe(pauseAfter *int) string {
	s := "groups " + p.orders()
	if p.only != "" {
		s += "; only=" + p.only
		for _, g := range p.groups {
			for _, pt := range g.parts {
				if pt.svc.Name != p.only {
					s += fmt.Sprintf(", %s stays on %s", pt.svc.Name, pt.rel.Version)
				}
			}
		}
	}
	if len(p.keep) > 0 {
		var ks []string
		for _, g := range p.groups {
			for _, pt := range g.parts {
				if p.keep[pt.svc.Name] {
					ks = append(ks, pt.svc.Name)
				}
			}
		}
		s += "; left running (unchanged): " + strings.Join(ks, ", ")
	}
	if pauseAfter != nil {
		s += fmt.Sprintf("; pause-after=%d", *pauseAfter)
	}
	return s
}

// startGroup starts a group's instances into slot and waits until each is
// healthy. Each instance records the release it runs.
func (o *Orchestrator) startGroup(ctx context.Context, env *gantry.Environment, drv gantry.Driver, slot *gantry.Slot, m *gantry.Manifest, g group, extra map[string]string) (string, error) {
	start := time.Now()
	first := len(slot.Instances)
	var started []string
	for _, pt := range g.parts {
		if pt.svc.Instances == 0 {
			continue
		}
		before := len(slot.Instances)
		msg, err := o.startSlot(ctx, env, drv, slot, pt.rel, m, []*gantry.Service{pt.svc}, extra)
		for i := before; i < len(slot.Instances); i++ {
			slot.Instances[i].ReleaseID = pt.rel.ID
		}
		if serr := o.saveEnv(ctx, env); serr != nil && err == nil {
			err = serr
		}
		if err != nil {
			return "", err
		}
		started = append(started, msg)
	}
	for _, inst := range slot.Instances[first:] {
		if svc := serviceOf(g, inst.Service); svc != nil {
			if err := o.waitReady(ctx, drv, inst, svc); err != nil {
				return "", err
			}
		}
	}
	return fmt.Sprintf("group %d: %s; healthy in %s", g.order, strings.Join(started, " "), time.Since(start).Round(time.Millisecond)), nil
}

func serviceOf(g group, name string) *gantry.Service {
	for _, p := range g.parts {
		if p.svc.Name == name {
			return p.svc
		}
	}
	return nil
}

// stopInstances stops the instances of slot that keep selects, last
// started first, and drops them from the slot.
func (o *Orchestrator) stopInstances(ctx context.Context, env *gantry.Environment, drv gantry.Driver, slot *gantry.Slot, m *gantry.Manifest, keep func(gantry.Instance) bool) error {
	if err := o.checkFence(ctx); err != nil {
		return err
	}
	var firstErr error
	for i := len(slot.Instances) - 1; i >= 0; i-- {
		inst := slot.Instances[i]
		if keep(inst) {
			continue
		}
		stop := gantry.StopSpec{Signal: "SIGTERM", Timeout: gantry.DefaultStopTimeout}
		if svc := m.Services[inst.Service]; svc != nil {
			stop = svc.Stop
		}
		if err := drv.Stop(ctx, inst, stop); err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("stop %s-%d: %w", inst.Service, inst.Index, err)
			}
			continue
		}
		slot.Instances = append(slot.Instances[:i:i], slot.Instances[i+1:]...)
	}
	if err := o.saveEnv(ctx, env); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// startedGroups returns the groups of p that have instances in slot,
// highest order first: the order they are put back in.
func startedGroups(p *plan, slot *gantry.Slot) []group {
	var out []group
	for i := len(p.groups) - 1; i >= 0; i-- {
		g := p.groups[i]
		for _, inst := range slot.Instances {
			if g.has(inst.Service) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

func groupOrders(gs []group) string {
	var s []string
	for _, g := range gs {
		s = append(s, fmt.Sprint(g.order))
	}
	return strings.Join(s, ", ")
}

// groupErr names the group in a failure, so the journal says which group
// failed even though a failed step's detail is its error.
func groupErr(g group, err error) error {
	if err == nil {
		return nil
	}
	var ge *gantry.Error
	if errors.As(err, &ge) {
		return &gantry.Error{Code: ge.Code, Message: g.label() + ": " + ge.Message}
	}
	return fmt.Errorf("%s: %w", g.label(), err)
}

// waitReady waits until an instance is ready: an HTTP service, or a worker
// that declares a health path (a status endpoint), when its check passes;
// any other worker when it still runs after its ready delay.
func (o *Orchestrator) waitReady(ctx context.Context, drv gantry.Driver, inst gantry.Instance, svc *gantry.Service) error {
	if !svc.HTTP && svc.Health.Path != "" && inst.Addr != "" {
		probed := *svc
		probed.HTTP = true
		return o.waitInstance(ctx, drv, inst, &probed)
	}
	return o.waitInstance(ctx, drv, inst, svc)
}
