package deploy

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// slotPort is the port a container of a slot-driven runtime listens on
// ($PORT): the pod has its own network, so one port serves every instance.
const slotPort = 8080

// slotPersistRoot is where a container of a slot-driven runtime finds its
// persistent directories: the runtime mounts the environment's volume of
// each (a PersistentVolumeClaim on Kubernetes) at <root>/<name>.
const slotPersistRoot = "/var/lib/gantry/persist"

// slotPersist maps svc's persistent directories to their paths inside its
// containers.
func slotPersist(svc *gantry.Service) map[string]string {
	if len(svc.Persist) == 0 {
		return nil
	}
	out := make(map[string]string, len(svc.Persist))
	for _, name := range svc.Persist {
		out[name] = slotPersistRoot + "/" + name
	}
	return out
}

// slotDriver returns the environment's driver when it switches traffic
// itself, a slot at a time (Kubernetes), instead of through Gantry's router.
func (o *Orchestrator) slotDriver(spec *gantry.EnvironmentSpec) (gantry.SlotDriver, bool) {
	drv, err := o.driver(spec)
	if err != nil {
		return nil, false
	}
	sd, ok := drv.(gantry.SlotDriver)
	return sd, ok
}

// deploySlots is the blue-green deploy on a runtime that switches traffic
// itself: the candidate slot's workloads are rolled out and ready (the
// driver waits on the runtime's own rollout status), then the runtime's
// switch points the environment's traffic at them; the previous slot stays
// warm for keep_warm.
//
// A database change keeps the order it has on every runtime: a standby
// still running is scaled down first (it may need a schema about to go), a
// contract still due is made, the release's migrations expand before its
// Deployments start (they get the new schema version's connection
// settings), a candidate that fails rolls the expand back, and the
// contract follows once the old slot is scaled down (here, with keep_warm
// 0, or when keep_warm ends).
//
// With the restart strategy the active slot is updated in place (the
// runtime's rolling update, which never has fewer ready instances) and no
// switch is needed.
func (o *Orchestrator) deploySlots(ctx context.Context, r *run, sd gantry.SlotDriver, op *op) error {
	rel, m, spec := op.rel, op.m, op.spec
	drv, err := o.driver(spec) // sd's own Driver side, for the switch
	if err != nil {
		return err
	}
	env, err := o.loadEnv(ctx, rel.App, r.d.Env, spec)
	if err != nil {
		return err
	}
	if err := r.step(ctx, "verify-artifacts", "", func() (string, error) { return o.verifyArtifacts(ctx, rel) }); err != nil {
		return err
	}
	if op.clone != nil && op.clone.files {
		// The runtime's own volumes (Kubernetes claims): it copies them,
		// before the clone's first slot mounts them.
		if err := o.copyRuntimePersist(ctx, r, drv, op.source, env, m); err != nil {
			return err
		}
	}
	slot := gantry.SlotBlue
	if a := env.ActiveSlot(); a != nil {
		r.d.FromRelease = a.ReleaseID
		if op.strategy == gantry.StrategyRestart {
			r.d.Slot = a.Name
			return o.updateSlotInPlace(ctx, r, sd, drv, env, a, op)
		}
		slot = gantry.OtherSlot(a.Name)
	}
	r.d.Slot = slot
	cand := env.Slot(slot)
	if m.Database != nil && len(cand.Instances) > 0 {
		// The standby may run a release that needs the schema the
		// contract removes: scaled down first, as the router's rollout
		// stops it.
		if err := r.step(ctx, "stop-standby", fmt.Sprintf("slot %s (%s)", slot, cand.Version), func() (string, error) {
			return "", o.stopSlotDriven(ctx, sd, env, cand)
		}); err != nil {
			return err
		}
	}
	if err := o.contractBeforeExpand(ctx, r, env, rel, m); err != nil {
		return err
	}
	db, err := o.expandDatabase(ctx, r, env, rel, m, false)
	if err != nil {
		return err
	}
	s, names, err := o.slotSpec(ctx, drv, env, rel, m, slot, db.connVars())
	if err != nil {
		return o.failSlot(ctx, r, sd, env, cand, db, err)
	}
	*cand = gantry.Slot{Name: slot, State: gantry.SlotStarting, ReleaseID: rel.ID, Version: rel.Version, Since: o.now()}
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	err = r.step(ctx, "start", fmt.Sprintf("slot %s: %s", slot, strings.Join(names, ", ")), func() (string, error) {
		insts, err := sd.StartSlot(ctx, s)
		cand.Instances = insts
		if serr := o.saveEnv(ctx, env); err == nil {
			err = serr
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d instances rolled out and ready", len(insts)), nil
	})
	if err == nil {
		err = o.verifySlot(ctx, r, sd, op, env, cand)
	}
	if err != nil {
		return o.failSlot(ctx, r, sd, env, cand, db, err)
	}
	cand.Verified = true
	// The switch hooks run around this switch as around the router's: a
	// smoke test before it, a cache purge after it.
	main, _ := o.mainRoute(env, cand, m)
	if err := o.runHooks(ctx, r, m, rel, env, "before_switch", gantry.FirstHost(main.route.PreviewHosts)); err != nil {
		return o.failSlot(ctx, r, sd, env, cand, db, err)
	}
	// With Gantry's router in front, a canary splits its traffic (the
	// runtime's Services follow only the final switch).
	if spec.Runtime.RouterInFront() {
		ro := &rollout{r: r, op: op, env: env, drv: drv, rel: rel, m: m, spec: spec, cand: cand, db: db}
		if err := o.runCanary(ctx, ro, main.route, main.targets); err != nil {
			return o.failSlot(ctx, r, sd, env, cand, db, err)
		}
	}
	how := "the runtime's switch"
	if spec.Runtime.RouterInFront() {
		how = "Gantry's router, then the runtime's switch"
	}
	var before []gantry.RouteStatus
	if err := r.step(ctx, "switch", fmt.Sprintf("%s/%s → slot %s (%s)", env.App, env.Name, slot, how), func() (string, error) {
		if spec.Watch != nil && spec.Runtime.RouterInFront() {
			before, _ = o.Router.Status(ctx)
		}
		msg, err := o.switchTo(ctx, env, drv, cand, m, false)
		if err == nil && spec.Runtime.RouterInFront() {
			o.clearPreview(ctx, env.App, env.Name)
		}
		return msg, err
	}); err != nil {
		// Not undone as a failure before the switch is (failSlot): the
		// runtime's switch may have pointed some Services at the
		// candidate already, so it keeps running, and its expand stays,
		// until the next deploy or a rollback.
		return err
	}
	o.promoteSlot(env, slot, spec.KeepWarm)
	if err := o.saveEnv(ctx, env); err != nil {
		return err
	}
	if op.afterSwitch != nil {
		if err := op.afterSwitch(ctx); err != nil {
			return err
		}
	}
	if err := o.watchSlot(ctx, r, op, env, drv, cand, before); err != nil {
		return err
	}
	if err := o.runHooks(ctx, r, m, rel, env, "after_switch", gantry.FirstHost(main.route.Hosts)); err != nil {
		return err
	}
	if old := env.Slots[gantry.OtherSlot(slot)]; old != nil && old.State == gantry.SlotStandby && !old.WarmUntil.After(o.now()) {
		if err := r.step(ctx, "stop-previous", fmt.Sprintf("slot %s (%s), keep_warm is 0", old.Name, old.Version), func() (string, error) {
			return "", o.stopSlotDriven(ctx, sd, env, old)
		}); err != nil {
			return err
		}
		return o.contractStep(ctx, r, env, m)
	}
	return nil
}

// slotSpec is the whole slot of rel for the runtime: every service's
// image (placed where env runs it), command, health and variables, with
// extra (a database change's connection settings) on top; names says what
// starts, for the journal.
func (o *Orchestrator) slotSpec(ctx context.Context, drv gantry.Driver, env *gantry.Environment, rel *gantry.Release, m *gantry.Manifest, slot string, extra map[string]string) (gantry.SlotSpec, []string, error) {
	s := gantry.SlotSpec{SlotRef: slotRef(env, slot), ReleaseID: rel.ID}
	vars, err := o.instanceVars(env, rel, slot)
	if err != nil {
		return s, nil, err
	}
	maps.Copy(vars, extra)
	var names []string
	for _, svc := range m.ServicesInOrder() {
		art, ok := rel.Artifacts[svc.Name]
		if !ok || art.Kind != gantry.ArtifactImage {
			return s, nil, gantry.Errorf(gantry.EINVALID, "service %s of release %s is not an image: the %s runtime runs images by digest", svc.Name, rel.ID, env.Spec.Runtime.Driver)
		}
		if art, err = placeImage(ctx, drv, env, rel, svc.Name, art); err != nil {
			return s, nil, err
		}
		persist := slotPersist(svc)
		s.Services = append(s.Services, gantry.SlotServiceSpec{
			Spec: gantry.InstanceSpec{App: env.App, Env: env.Name, Slot: slot, Service: svc.Name, ReleaseID: rel.ID,
				Artifact: art, Command: svc.Run, Port: slotPort, Stop: svc.Stop, Health: svc.Health, Runtime: env.Spec.Runtime,
				Vars: serviceVars(vars, rel, svc, persist), Persist: persist},
			Instances: svc.Instances, HTTP: svc.HTTP,
		})
		names = append(names, fmt.Sprintf("%s×%d", svc.Name, svc.Instances))
	}
	return s, names, nil
}

// failSlot puts back a slot deploy that failed before the switch: the
// candidate is scaled down, the migration its release expanded is rolled
// back (no instance uses its schema), and the active slot, which traffic
// never left, keeps serving.
func (o *Orchestrator) failSlot(ctx context.Context, r *run, sd gantry.SlotDriver, env *gantry.Environment, cand *gantry.Slot, db *dbChange, cause error) error {
	wctx := context.WithoutCancel(ctx)
	if env.Spec.Runtime.RouterInFront() {
		o.clearPreview(wctx, env.App, env.Name)
	}
	if cand.State == gantry.SlotStarting {
		// Recorded stopped only once the runtime has scaled it down:
		// until then recovery stops it (reconcileSlots).
		_ = r.step(wctx, "stop-candidate", "slot "+cand.Name, func() (string, error) {
			return "", o.stopSlotDriven(wctx, sd, env, cand)
		})
	}
	if db != nil && db.expanded {
		_ = o.rollbackDatabase(wctx, r, db.b)
	}
	return cause
}

// updateSlotInPlace is the restart strategy on a runtime that switches
// traffic itself: the active slot's workloads are updated to the release by
// the runtime's rolling update, which keeps ready instances serving
// throughout; traffic never leaves the slot. A database change expands
// first, while the old pods still serve, and contracts once the rolling
// update has replaced them.
func (o *Orchestrator) updateSlotInPlace(ctx context.Context, r *run, sd gantry.SlotDriver, drv gantry.Driver, env *gantry.Environment, slot *gantry.Slot, op *op) error {
	rel, m := op.rel, op.m
	db, err := o.expandDatabase(ctx, r, env, rel, m, false)
	if err != nil {
		return err
	}
	s, names, err := o.slotSpec(ctx, drv, env, rel, m, slot.Name, db.connVars())
	if err != nil {
		return o.failSlot(ctx, r, sd, env, slot, db, err)
	}
	err = r.step(ctx, "rolling-update", fmt.Sprintf("active slot %s: %s → %s (%s)", slot.Name, slot.Version, rel.Version, strings.Join(names, ", ")), func() (string, error) {
		insts, err := sd.StartSlot(ctx, s)
		if err != nil {
			return "", err
		}
		slot.Instances, slot.ReleaseID, slot.Version, slot.Since, slot.Verified = insts, rel.ID, rel.Version, o.now(), true
		if err := o.saveEnv(ctx, env); err != nil {
			return "", err
		}
		return fmt.Sprintf("%d instances rolled out and ready; traffic stayed on slot %s", len(insts), slot.Name), nil
	})
	if err != nil {
		// The runtime's rolling update keeps the old pods until new ones
		// are ready: the old release still serves, on the old schema.
		return o.failSlot(ctx, r, sd, env, slot, db, err)
	}
	if op.afterSwitch != nil {
		if err := op.afterSwitch(ctx); err != nil {
			return err
		}
	}
	return o.contractStep(ctx, r, env, m)
}

// scaleDownSlot stops a slot that no longer serves, on any runtime: a
// slot-driven one scales it down, keeping its objects (stopSlotDriven);
// otherwise each instance stops with its service's stop settings, from m
// (nil: the manifest of the slot's release).
func (o *Orchestrator) scaleDownSlot(ctx context.Context, env *gantry.Environment, drv gantry.Driver, s *gantry.Slot, m *gantry.Manifest) error {
	if sd, ok := drv.(gantry.SlotDriver); ok {
		return o.stopSlotDriven(ctx, sd, env, s)
	}
	if m == nil {
		m = o.manifestOfRelease(ctx, env.App, s.ReleaseID)
	}
	return o.stopSlot(ctx, env, drv, s, m)
}

// stopSlotDriven scales a slot of a slot-driven runtime down, keeping its
// objects for a later rollback.
func (o *Orchestrator) stopSlotDriven(ctx context.Context, sd gantry.SlotDriver, env *gantry.Environment, s *gantry.Slot) error {
	if err := o.checkFence(ctx); err != nil {
		return err
	}
	if err := sd.StopSlot(ctx, slotRef(env, s.Name), false); err != nil {
		return err
	}
	s.Instances, s.State, s.WarmUntil = nil, gantry.SlotStopped, time.Time{}
	return o.saveEnv(ctx, env)
}

// reconcileSlots brings a slot-driven environment's record in line with the
// runtime after a restart: the runtime says which slot takes traffic, and
// the instances of the environment are re-attached, never recreated.
func (o *Orchestrator) reconcileSlots(ctx context.Context, sd gantry.SlotDriver, drv gantry.Driver, env *gantry.Environment) (string, error) {
	active, err := sd.ActiveSlot(ctx, slotRef(env, ""))
	if err != nil {
		return "", err
	}
	for _, s := range env.Slots {
		live := s.Instances[:0]
		for _, inst := range s.Instances {
			if err := drv.Attach(ctx, inst); err == nil {
				live = append(live, inst)
			}
		}
		s.Instances = live
	}
	if active, err = o.followRouterAfterCrash(ctx, sd, env, active); err != nil {
		return "", err
	}
	if active == "" {
		return "the runtime routes no traffic to this environment yet", o.saveEnv(ctx, env)
	}
	if env.Active != active {
		o.promoteSlot(env, active, env.Spec.KeepWarm)
	}
	ended := ""
	if env.Spec.Runtime.RouterInFront() {
		// A canary the crash interrupted: traffic back on the live slot
		// before the candidate stops.
		if ended, err = o.clearCanaries(ctx, env); err != nil {
			return "", err
		}
	}
	for _, s := range env.Slots {
		if s.Name != active && s.State == gantry.SlotStarting {
			if err := o.stopSlotDriven(ctx, sd, env, s); err != nil {
				return "", err
			}
		}
	}
	return fmt.Sprintf("%s serving from slot %s (as the runtime routes it)%s", env.Slots[active].Version, active, ended), o.saveEnv(ctx, env)
}

// slotRef names a slot of env, with the environment's runtime settings the
// driver needs to find it and the hosts a runtime that routes its own
// traffic serves.
func slotRef(env *gantry.Environment, slot string) gantry.SlotRef {
	return gantry.SlotRef{App: env.App, Env: env.Name, Slot: slot, Runtime: env.Spec.Runtime,
		Hosts: env.Spec.Hosts, PreviewHosts: previewHosts(env.Spec.Hosts)}
}
