package memdriver

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// Slots is the variant of the driver whose runtime switches traffic itself,
// a slot at a time (gantry.SlotDriver, as Kubernetes does). It is a type of
// its own because the orchestrator chooses that path by type assertion.
// It records StartSlot, Switch, ActiveSlot and StopSlot as calls with ops
// "start-slot", "switch", "active-slot" and "stop-slot", and remembers which
// slot takes traffic.
type Slots struct {
	*Driver

	smu    sync.Mutex
	active map[string]string           // app/env → slot
	specs  map[slotKey]gantry.SlotSpec // last spec per slot, to scale up again
	insts  map[slotKey][]gantry.Instance

	// CopyPersistErr, when set, is what CopyPersist fails with.
	CopyPersistErr error
}

// slotKey names a slot's workloads. As on Kubernetes, an environment with
// a namespace is found by it, not by its name, which a rename changes.
type slotKey struct{ app, env, slot string }

func keyOf(r gantry.SlotRef) slotKey { return slotKey{r.App, envKey(r), r.Slot} }

func envKey(r gantry.SlotRef) string {
	if r.Runtime.Namespace != "" {
		return "namespace " + r.Runtime.Namespace
	}
	return r.Env
}

var (
	_ gantry.Driver     = (*Slots)(nil)
	_ gantry.SlotDriver = (*Slots)(nil)
)

// NewSlots returns a slot-switching driver named "kubernetes".
func NewSlots() *Slots {
	d := New()
	d.DriverName = "kubernetes"
	return &Slots{Driver: d, active: map[string]string{}, specs: map[slotKey]gantry.SlotSpec{}, insts: map[slotKey][]gantry.Instance{}}
}

func key(app, env string) string { return app + "/" + env }

// StartSlot replaces the slot's instances with the spec's and returns once
// every HTTP instance answers its health path.
func (s *Slots) StartSlot(ctx context.Context, spec gantry.SlotSpec) ([]gantry.Instance, error) {
	c := Call{Op: "start-slot", App: spec.App, Env: spec.Env, Slot: spec.Slot, ReleaseID: spec.ReleaseID}
	insts, err := s.startSlot(ctx, spec)
	if err != nil {
		c.Err = err.Error()
	}
	s.record(c)
	return insts, err
}

func (s *Slots) startSlot(ctx context.Context, spec gantry.SlotSpec) ([]gantry.Instance, error) {
	s.smu.Lock()
	old := s.insts[keyOf(spec.SlotRef)]
	s.specs[keyOf(spec.SlotRef)] = spec
	s.smu.Unlock()
	var out []gantry.Instance
	for _, svc := range spec.Services {
		for i := 1; i <= svc.Instances; i++ {
			is := svc.Spec
			is.Index, is.Port = i, 0
			inst, err := s.Driver.start(is)
			if err != nil {
				s.saveInsts(spec.SlotRef, append(old, out...))
				return out, err
			}
			out = append(out, inst)
			if svc.HTTP && is.Health.Path != "" {
				if err := ready(ctx, inst.Addr+is.Health.Path); err != nil {
					s.saveInsts(spec.SlotRef, append(old, out...))
					return out, gantry.Errorf(gantry.EUNAVAILABLE, "%s-%d of slot %s is not ready: %v", is.Service, i, spec.Slot, err)
				}
			}
		}
	}
	for _, inst := range old {
		s.Driver.Stop(ctx, inst, gantry.StopSpec{})
	}
	s.saveInsts(spec.SlotRef, out)
	return out, nil
}

func (s *Slots) saveInsts(ref gantry.SlotRef, insts []gantry.Instance) {
	s.smu.Lock()
	s.insts[keyOf(ref)] = insts
	s.smu.Unlock()
}

// ready is a readiness probe: a few tries, quickly.
func ready(ctx context.Context, url string) error {
	var last error
	for try := 0; try < 3; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		time.Sleep(5 * time.Millisecond)
	}
	return last
}

// Switch points the environment's traffic at ref's slot, scaling it up
// again from its last spec when it was scaled down.
func (s *Slots) Switch(ctx context.Context, ref gantry.SlotRef) error {
	c := Call{Op: "switch", App: ref.App, Env: ref.Env, Slot: ref.Slot, Namespace: ref.Runtime.Namespace, Hosts: strings.Join(ref.Hosts, ",")}
	err := s.switchTo(ctx, ref)
	if err != nil {
		c.Err = err.Error()
	}
	s.record(c)
	return err
}

func (s *Slots) switchTo(ctx context.Context, ref gantry.SlotRef) error {
	s.smu.Lock()
	live := len(s.insts[keyOf(ref)]) > 0
	spec, known := s.specs[keyOf(ref)]
	s.smu.Unlock()
	if !live {
		if !known {
			return gantry.Errorf(gantry.ENOTFOUND, "slot %s of %s/%s has no workloads", ref.Slot, ref.App, ref.Env)
		}
		if _, err := s.startSlot(ctx, spec); err != nil {
			return err
		}
	}
	s.smu.Lock()
	s.active[key(ref.App, envKey(ref))] = ref.Slot
	s.active[key(ref.App, ref.Env)] = ref.Slot // for tests that ask by name
	s.smu.Unlock()
	return nil
}

// ReleaseHosts implements gantry.HostReleaser: it records the call
// ("release-hosts", with the namespace and the name whose hosts go).
func (s *Slots) ReleaseHosts(ctx context.Context, ref gantry.SlotRef) error {
	s.record(Call{Op: "release-hosts", App: ref.App, Env: ref.Env, Namespace: ref.Runtime.Namespace})
	return nil
}

var _ gantry.HostReleaser = (*Slots)(nil)

// CopyPersist records a copy of persistent directories (op
// "copy-persist", Env the clone's, Namespace the source's namespace,
// Service the names), copying nothing: the runtime's volumes are not
// modelled. It fails with CopyPersistErr when set.
func (s *Slots) CopyPersist(ctx context.Context, from, to gantry.SlotRef, names []string) (string, error) {
	c := Call{Op: "copy-persist", App: to.App, Env: to.Env, Namespace: from.Runtime.Namespace, Service: strings.Join(names, ",")}
	s.smu.Lock()
	err := s.CopyPersistErr
	s.smu.Unlock()
	if err != nil {
		c.Err = err.Error()
		s.record(c)
		return "", err
	}
	s.record(c)
	return strings.Join(names, ", ") + " copied from " + from.Env, nil
}

// ActiveSlot reports the slot taking traffic ("" when none).
func (s *Slots) ActiveSlot(ctx context.Context, ref gantry.SlotRef) (string, error) {
	app, env := ref.App, ref.Env
	s.record(Call{Op: "active-slot", App: app, Env: env})
	s.smu.Lock()
	defer s.smu.Unlock()
	return s.active[key(app, envKey(ref))], nil
}

// StopSlot scales a slot down (forgetting it when remove); the active slot
// is refused with ECONFLICT.
func (s *Slots) StopSlot(ctx context.Context, ref gantry.SlotRef, remove bool) error {
	c := Call{Op: "stop-slot", App: ref.App, Env: ref.Env, Slot: ref.Slot}
	s.smu.Lock()
	if s.active[key(ref.App, ref.Env)] == ref.Slot {
		s.smu.Unlock()
		err := gantry.Errorf(gantry.ECONFLICT, "slot %s of %s/%s takes traffic", ref.Slot, ref.App, ref.Env)
		c.Err = err.Error()
		s.record(c)
		return err
	}
	insts := s.insts[keyOf(ref)]
	delete(s.insts, keyOf(ref))
	if remove {
		delete(s.specs, keyOf(ref))
	}
	s.smu.Unlock()
	for _, inst := range insts {
		s.Driver.Stop(ctx, inst, gantry.StopSpec{})
	}
	s.record(c)
	return nil
}

// SlotInstances returns the instances the runtime runs for a slot, sorted
// by address.
func (s *Slots) SlotInstances(app, env, slot string) []gantry.Instance {
	s.smu.Lock()
	defer s.smu.Unlock()
	var out []gantry.Instance
	for k, spec := range s.specs { // by the name the slot was last started under
		if spec.App == app && spec.Env == env && spec.Slot == slot {
			out = append(out, s.insts[k]...)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}
