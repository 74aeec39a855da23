package deploy

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry"
)

// An environment has one route in the router per http service
// (services.<service>.route): a service without a route keeps the
// environment's own route name, one with a route is "<app>/<env>/<service>".
// Each route has its own hosts, path prefix, health check and preview host;
// the router picks the longest matching path prefix. Everything that
// switches, holds, previews or watches an environment's traffic goes
// through the functions of this file, so that it does so for every
// service's route.

// routeTargets is one route of an environment and the targets a slot gives it.
type routeTargets struct {
	route   gantry.Route
	service string
	targets []string
}

// routes returns env's routes under m, one per http service in rollout
// order, with the targets slot gives each (none for a nil slot).
func (o *Orchestrator) routes(env *gantry.Environment, slot *gantry.Slot, m *gantry.Manifest) []routeTargets {
	var out []routeTargets
	for _, s := range m.ServicesInOrder() {
		if !s.HTTP {
			continue
		}
		hosts := s.RouteHosts(env.Spec.Hosts)
		rt := routeTargets{service: s.Name, route: gantry.Route{
			Name: gantry.ServiceRouteName(env.App, env.Name, s), Hosts: hosts, PathPrefix: s.RoutePath(),
			PreviewHosts: previewHosts(hosts), Health: s.Health,
		}}
		if slot != nil {
			for _, inst := range slot.Instances {
				if inst.Service == s.Name && inst.Addr != "" {
					rt.targets = append(rt.targets, inst.Addr)
				}
			}
		}
		out = append(out, rt)
	}
	return out
}

// mainRoute is the route verify checks and hooks address: the one of the
// service without a route (which takes every path of the environment's
// hosts), else the first. ok is false when m has no http service.
func (o *Orchestrator) mainRoute(env *gantry.Environment, slot *gantry.Slot, m *gantry.Manifest) (routeTargets, bool) {
	rts := o.routes(env, slot, m)
	for _, rt := range rts {
		if rt.route.Name == gantry.RouteName(env.App, env.Name) {
			return rt, true
		}
	}
	if len(rts) == 0 {
		return routeTargets{route: gantry.Route{Name: gantry.RouteName(env.App, env.Name), Hosts: env.Spec.Hosts, PreviewHosts: previewHosts(env.Spec.Hosts)}}, false
	}
	return rts[0], true
}

// envRouteStatus returns the router's status of the routes it has for env
// of app, in the router's order.
func (o *Orchestrator) envRouteStatus(ctx context.Context, app, env string) ([]gantry.RouteStatus, error) {
	sts, err := o.Router.Status(ctx)
	if err != nil {
		return nil, err
	}
	var out []gantry.RouteStatus
	for _, st := range sts {
		if gantry.IsEnvironmentRoute(st.Route.Name, app, env) {
			out = append(out, st)
		}
	}
	return out, nil
}

// routeNames returns the names of the routes the router has for env of
// app, the environment's own route first.
func (o *Orchestrator) routeNames(ctx context.Context, app, env string) ([]string, error) {
	sts, err := o.envRouteStatus(ctx, app, env)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, st := range sts {
		out = append(out, st.Route.Name)
	}
	sort.Strings(out) // "<app>/<env>" sorts before "<app>/<env>/<service>"
	return out, nil
}

// pauseRoutes holds the requests (with writesOnly, the writes) of every
// route of an environment and returns the names it holds; none (and no
// error) when the environment has no route yet. When one fails, the ones
// held before it are let go.
func (o *Orchestrator) pauseRoutes(ctx context.Context, app, env string, writesOnly bool) ([]string, error) {
	names, err := o.routeNames(ctx, app, env)
	if err != nil {
		return nil, err
	}
	var held []string
	for _, n := range names {
		err := o.Router.Pause(ctx, n, writesOnly)
		if gantry.ErrorCode(err) == gantry.ENOTFOUND {
			continue
		}
		if err != nil {
			_ = o.resumeRoutes(context.WithoutCancel(ctx), held)
			return nil, err
		}
		held = append(held, n)
	}
	return held, nil
}

// resumeRoutes lets the held requests of routes go.
func (o *Orchestrator) resumeRoutes(ctx context.Context, names []string) error {
	var errs []error
	for _, n := range names {
		if err := o.Router.Resume(ctx, n); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// setPreview points the preview host of each of env's routes at slot's
// instances of that route's service. It returns ENOTFOUND when a route
// does not exist yet (before an environment's first switch).
func (o *Orchestrator) setPreview(ctx context.Context, env *gantry.Environment, slot *gantry.Slot, m *gantry.Manifest) error {
	var notFound error
	for _, rt := range o.routes(env, slot, m) {
		if len(rt.targets) == 0 {
			continue
		}
		err := o.Router.SetPreview(ctx, rt.route.Name, rt.targets)
		if gantry.ErrorCode(err) == gantry.ENOTFOUND {
			notFound = err
			continue
		}
		if err != nil {
			return err
		}
	}
	return notFound
}

// clearPreview clears the preview target sets of every route of env.
func (o *Orchestrator) clearPreview(ctx context.Context, app, env string) {
	names, _ := o.routeNames(ctx, app, env)
	for _, n := range names {
		_ = o.Router.SetPreview(ctx, n, nil)
	}
}

// removeRoutes removes every route of env of app from the router, except
// those named in keep.
func (o *Orchestrator) removeRoutes(ctx context.Context, app, env string, keep map[string]bool) error {
	names, err := o.routeNames(ctx, app, env)
	if err != nil {
		return err
	}
	for _, n := range names {
		if keep[n] {
			continue
		}
		if err := o.Router.RemoveRoute(ctx, n); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
			return err
		}
	}
	return nil
}

// addResult adds one route's switch to the switch of an environment.
func addResult(sum *gantry.SwitchResult, res *gantry.SwitchResult) *gantry.SwitchResult {
	if sum == nil {
		c := *res
		return &c
	}
	sum.From = append(sum.From, res.From...)
	sum.To = append(sum.To, res.To...)
	sum.HealthRound = max(sum.HealthRound, res.HealthRound)
	sum.Drained += res.Drained
	sum.Cancelled += res.Cancelled
	sum.DrainTime = max(sum.DrainTime, res.DrainTime)
	return sum
}

// holdRequests journals step and holds every request of env's routes; it
// returns what letGo releases.
func (o *Orchestrator) holdRequests(ctx context.Context, r *run, step string, env *gantry.Environment) ([]string, error) {
	var held []string
	err := r.step(ctx, step, gantry.RouteName(env.App, env.Name), func() (string, error) {
		var err error
		held, err = o.pauseRoutes(ctx, env.App, env.Name, false)
		return strings.Join(held, ", "), err
	})
	return held, err
}

// holdRoutes journals step with detail and holds the requests (with
// writesOnly, the writes) of every route of env of app; the step notes
// none when the environment has no route yet. It returns what letGo
// releases.
func (o *Orchestrator) holdRoutes(ctx context.Context, r *run, step, detail, app, env string, writesOnly bool, none string) ([]string, error) {
	var held []string
	err := r.step(ctx, step, detail, func() (string, error) {
		var err error
		held, err = o.pauseRoutes(ctx, app, env, writesOnly)
		if err == nil && len(held) == 0 {
			return none, nil
		}
		return "", err
	})
	return held, err
}

// letGo journals step with detail and resumes the routes held (by
// holdRequests or pauseRoutes), even when ctx is cancelled.
func (o *Orchestrator) letGo(ctx context.Context, r *run, step, detail string, held []string) {
	if len(held) == 0 {
		return
	}
	wctx := context.WithoutCancel(ctx)
	_ = r.step(wctx, step, detail, func() (string, error) {
		return "", o.resumeRoutes(wctx, held)
	})
}
