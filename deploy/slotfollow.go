package deploy

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// With Gantry's router in front of a slot-driven runtime (runtime.traffic:
// router), the router's targets are the slots' pod addresses. The cluster
// replaces pods by itself (a node drained, a pod evicted or deleted), and a
// new pod has a new address. FollowSlots is the reconciler that keeps the
// router and the environment's slots on the pods that serve:
//
//   - it watches each such environment's instances through the runtime
//     (gantry.SlotFollower), and reads them again every followResync;
//   - for each slot with instances (active, warm standby, candidate) it
//     takes the ready ones per service; a service with none ready keeps
//     the addresses it had, so a route is never emptied (nor by an error
//     of the runtime, which changes nothing);
//   - under the environment's lock (an operation holding it is never
//     crossed; the follow waits for it), it switches the active slot's
//     routes to the new set (the router's switch: health-gated, so a new
//     pod takes traffic once its check passes, and draining), points the
//     preview of a candidate at its pods, and records the instances, so a
//     later switch, rollback or watch names the pods that serve.

// followResync is how often each followed environment is read again even
// without an event (a missed event, a watch that could not restart).
const followResync = 30 * time.Second

// followBackoff bounds the wait before a failed watch starts again.
const (
	followBackoffMin = 500 * time.Millisecond
	followBackoffMax = 30 * time.Second
)

// FollowSlots runs the reconciler until ctx ends: every interval it looks
// for the environments to follow (runtime.traffic: router on a runtime
// that is a gantry.SlotFollower) and runs one follower per environment.
func (o *Orchestrator) FollowSlots(ctx context.Context, interval time.Duration) {
	var wg sync.WaitGroup
	defer wg.Wait()
	running := map[[2]string]context.CancelFunc{}
	defer func() {
		for _, cancel := range running {
			cancel()
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		want := o.followed(ctx)
		for key, cancel := range running {
			if _, ok := want[key]; !ok {
				cancel()
				delete(running, key)
			}
		}
		for key, f := range want {
			if running[key] != nil {
				continue
			}
			fctx, cancel := context.WithCancel(ctx)
			running[key] = cancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				o.followEnv(fctx, key[0], key[1], f.sf, f.ref)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type follower struct {
	sf  gantry.SlotFollower
	ref gantry.SlotRef
}

// followed returns the environments to follow, by app and name.
func (o *Orchestrator) followed(ctx context.Context) map[[2]string]follower {
	out := map[[2]string]follower{}
	apps, err := o.Store.ListApps(ctx)
	if err != nil {
		return out
	}
	for _, app := range apps {
		envs, err := o.Store.ListEnvironments(ctx, app.Name)
		if err != nil {
			continue
		}
		for _, env := range envs {
			if !env.Spec.Runtime.RouterInFront() {
				continue
			}
			drv, err := o.driver(&env.Spec)
			if err != nil {
				continue
			}
			if sf, ok := drv.(gantry.SlotFollower); ok {
				out[[2]string{env.App, env.Name}] = follower{sf, slotRef(env, "")}
			}
		}
	}
	return out
}

// followEnv follows one environment until ctx ends: a watch of its
// instances (started again after an error, with a growing pause) kicks a
// reconcile, as does a timer.
func (o *Orchestrator) followEnv(ctx context.Context, app, env string, sf gantry.SlotFollower, ref gantry.SlotRef) {
	log := o.logger().With("app", app, "env", env)
	kick := make(chan struct{}, 1)
	changed := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	watching := make(chan struct{})
	defer func() { <-watching }()
	go func() {
		defer close(watching)
		backoff := followBackoffMin
		for ctx.Err() == nil {
			started := time.Now()
			err := sf.WatchSlots(ctx, ref, changed)
			if err == nil || ctx.Err() != nil {
				return
			}
			if time.Since(started) > followBackoffMax {
				backoff = followBackoffMin // it ran a while: a closed watch, not a failing one
			}
			log.Warn("follow the runtime's instances: watch failed; starting again", "error", err, "after", backoff)
			changed() // what changed while no watch ran
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, followBackoffMax)
		}
	}()
	t := time.NewTicker(followResync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-t.C:
		}
		if err := o.followSlots(ctx, app, env, sf); err != nil && ctx.Err() == nil {
			log.Warn("follow the runtime's instances", "error", err)
			changed() // try again after the pause below
		}
		// Events come in bursts (a pod created, scheduled, given an IP,
		// made ready): one reconcile per short pause is enough.
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// followSlots is one reconcile of an environment (see the top of the file).
// It returns nil, doing nothing, while an operation holds the lock: the
// next event or resync tries again.
func (o *Orchestrator) followSlots(ctx context.Context, app, name string, sf gantry.SlotFollower) error {
	env, err := o.Store.FindEnvironment(ctx, app, name)
	if err != nil || !env.Spec.Runtime.RouterInFront() {
		return err
	}
	if changes, err := o.slotChanges(ctx, env, sf); err != nil || len(changes) == 0 {
		return err
	}
	lock := &gantry.Lock{App: app, Env: name, Holder: systemActor, Operation: "follow the runtime's instances", Since: o.now()}
	if err := o.Store.AcquireLock(ctx, lock); err != nil {
		if gantry.ErrorCode(err) == gantry.ECONFLICT {
			return nil
		}
		return err
	}
	defer o.Store.ReleaseLock(context.WithoutCancel(ctx), app, name, systemActor, false)
	// Again under the lock: an operation may have changed the slots.
	if env, err = o.Store.FindEnvironment(ctx, app, name); err != nil {
		return err
	}
	changes, err := o.slotChanges(ctx, env, sf)
	if err != nil || len(changes) == 0 {
		return err
	}
	for slotName, insts := range changes {
		s := env.Slots[slotName]
		next := *s
		next.Instances = insts
		if err := o.followSlot(ctx, env, &next); err != nil {
			return err
		}
		o.logger().Info("the runtime replaced instances: following", "app", app, "env", name, "slot", slotName,
			"from", instanceAddrs(s.Instances), "to", instanceAddrs(insts))
		s.Instances = insts
	}
	return o.saveEnv(ctx, env)
}

// followSlot points the router at slot's new instances: the routes of the
// active slot, the preview of a candidate. A standby is only recorded: a
// rollback switches to what is recorded, health-gated.
func (o *Orchestrator) followSlot(ctx context.Context, env *gantry.Environment, slot *gantry.Slot) error {
	m := o.manifestOfRelease(ctx, env.App, slot.ReleaseID)
	if m == nil {
		return nil
	}
	switch slot.State {
	case gantry.SlotActive:
		for _, rt := range o.routes(env, slot, m) {
			if len(rt.targets) == 0 {
				continue
			}
			st, ok, err := o.routeSnapshot(ctx, rt.route.Name)
			if err != nil {
				return err
			}
			if ok && activeIs(st, rt.targets) {
				continue
			}
			if _, err := o.Router.Deploy(ctx, rt.route, rt.targets); err != nil {
				return err
			}
		}
	case gantry.SlotStarting:
		if err := o.setPreview(ctx, env, slot, m); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			return err
		}
	}
	return nil
}

// slotChanges reads the instances of each of env's slots that has some and
// returns the slots whose ready addresses changed, with their new
// instances. A service of a slot with no ready instance keeps its old ones.
func (o *Orchestrator) slotChanges(ctx context.Context, env *gantry.Environment, sf gantry.SlotFollower) (map[string][]gantry.Instance, error) {
	out := map[string][]gantry.Instance{}
	for name, s := range env.Slots {
		switch s.State {
		case gantry.SlotActive, gantry.SlotStandby, gantry.SlotStarting:
		default:
			continue
		}
		if len(s.Instances) == 0 {
			continue
		}
		fresh, err := sf.SlotInstances(ctx, slotRef(env, name))
		if err != nil {
			return nil, err
		}
		next := mergeInstances(s.Instances, fresh)
		if !slices.Equal(instanceAddrs(next), instanceAddrs(s.Instances)) {
			out[name] = next
		}
	}
	return out, nil
}

// mergeInstances takes, per service, the fresh instances when one of them
// is ready (has an address), else the old ones.
func mergeInstances(old, fresh []gantry.Instance) []gantry.Instance {
	ready := map[string]bool{}
	for _, in := range fresh {
		if in.Addr != "" {
			ready[in.Service] = true
		}
	}
	var out []gantry.Instance
	for _, in := range old {
		if !ready[in.Service] {
			out = append(out, in)
		}
	}
	for _, in := range fresh {
		if ready[in.Service] {
			out = append(out, in)
		}
	}
	return out
}

// instanceAddrs returns the "service=addr" of the instances with an
// address, sorted.
func instanceAddrs(insts []gantry.Instance) []string {
	var out []string
	for _, in := range insts {
		if in.Addr != "" {
			out = append(out, in.Service+"="+in.Addr)
		}
	}
	sort.Strings(out)
	return out
}
