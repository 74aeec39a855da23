// Package fleet keeps the routes of a control plane of several servers in
// the store, where routers on other hosts follow them: Router is the
// control side (a gantry.Router whose changes are new versions of the route
// table, written with the leader's fencing token, complete once every
// router has applied them), and Follower the router side (it watches the
// table through the API, applies each version to a local router and
// reports what it serves).
//
// It decides nothing about deployments; it must not import a store or the
// API (it works through the root package's interfaces).
package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// DefaultUnreachable is how long a switch waits for a router that has
// gone silent (it reports every second while it is up): past it the
// switch stops and names the router, without waiting out the health round
// and drain that a router still working on the change is given.
const DefaultUnreachable = 3 * time.Second

// applyMargin is what a switch waits beyond the route's health round and
// drain for the routers to say they applied it.
const applyMargin = 5 * time.Second

var _ gantry.Router = (*Router)(nil)

// Router is the control side of following routers.
type Router struct {
	Store gantry.RouteStore
	// Unreachable: see DefaultUnreachable (zero means it).
	Unreachable time.Duration
	Now         func() time.Time

	mu sync.Mutex // one change of the table at a time
}

func (r *Router) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// change applies fn to a copy of the table's entry name (a new entry when
// create) and writes the result as the table's next version with ctx's
// fencing token, then waits until every router serves it.
func (r *Router) change(ctx context.Context, name string, create bool, fn func(e *gantry.RouteEntry) error) (before gantry.RouteEntry, after gantry.RouteEntry, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, err := r.Store.FindRoutes(ctx)
	if err != nil {
		return before, after, err
	}
	e := t.Find(name)
	if e == nil {
		if !create {
			return before, after, gantry.Errorf(gantry.ENOTFOUND, "route %q not found", name)
		}
		t.Routes = append(t.Routes, gantry.RouteEntry{Route: gantry.Route{Name: name}})
		slices.SortFunc(t.Routes, func(a, b gantry.RouteEntry) int { return strings.Compare(a.Route.Name, b.Route.Name) })
		e = t.Find(name)
	} else {
		before = *e
	}
	if err := fn(e); err != nil {
		return before, after, err
	}
	after = *e
	if err := r.Store.PutRoutes(ctx, t); err != nil {
		return before, after, err
	}
	err = r.WaitApplied(ctx, t.Version, after.Route.DeployTimeout+after.Route.DrainTimeout+applyMargin)
	if err != nil {
		// Like a switch whose health round failed, a change that not
		// every router applied changes nothing: the routers that did go
		// back, so the engine may stop what the change pointed to.
		if e.Route.Name == before.Route.Name {
			*e = before
		} else {
			t.Routes = slices.DeleteFunc(t.Routes, func(x gantry.RouteEntry) bool { return x.Route.Name == name })
		}
		if rerr := r.Store.PutRoutes(context.WithoutCancel(ctx), t); rerr == nil {
			_ = r.WaitApplied(context.WithoutCancel(ctx), t.Version, applyMargin)
		}
	}
	return before, after, err
}

// WaitApplied returns once every registered router has applied version,
// or an error naming the router that failed to apply it, or that is still
// behind after limit. A router that does not answer is waited for like one
// that is slow, since what it serves is unknown, but only until it has
// been silent for Unreachable (it reports every second while up) and every
// router that answers has applied the version: then the error names it
// at once. One gone for good is forgotten with `gantry routers forget`.
func (r *Router) WaitApplied(ctx context.Context, version int64, limit time.Duration) error {
	silent := r.Unreachable
	if silent <= 0 {
		silent = DefaultUnreachable
	}
	// Silence counts from the start of the wait at the earliest: a server
	// that has just started (its recovery's first change) has not been
	// reachable, so the routers could not report to it until now.
	start := r.now()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		behind, err := r.behind(ctx, version)
		if err != nil || len(behind) == 0 {
			return err
		}
		var lost []string
		for _, b := range behind {
			if b.Failed >= version {
				return gantry.Errorf(gantry.EUNAVAILABLE, "router %s could not apply route table version %d: %s", b.Name, version, b.Error)
			}
			if r.now().Sub(later(b.Seen, start)) > silent {
				lost = append(lost, fmt.Sprintf("%s is behind and has not been heard from for %s", b, r.now().Sub(b.Seen).Round(time.Millisecond)))
			}
		}
		if len(lost) == len(behind) {
			return gantry.Errorf(gantry.EUNAVAILABLE, "route table version %d is not applied by every router: %s (unreachable? `gantry routers forget NAME` if it is gone for good)",
				version, strings.Join(lost, "; "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			names := make([]string, len(behind))
			for i, b := range behind {
				names[i] = fmt.Sprintf("%s (last heard %s ago)", b, r.now().Sub(b.Seen).Round(time.Millisecond))
			}
			return gantry.Errorf(gantry.EUNAVAILABLE, "route table version %d is not applied by every router after %s: %s is behind",
				version, limit, strings.Join(names, ", "))
		case <-tick.C:
		}
	}
}

// behind returns the live routers that do not serve version yet.
func (r *Router) behind(ctx context.Context, version int64) ([]gantry.RouterReport, error) {
	rs, err := r.Store.ListRouterReports(ctx)
	if err != nil {
		return nil, err
	}
	var out []gantry.RouterReport
	for _, rr := range rs {
		if rr.Applied < version {
			out = append(out, *rr)
		}
	}
	return out, nil
}

// Deploy makes targets the route's active set (the one before becomes its
// previous set) and returns once every router serves them; each router runs
// its own health round first and drains its old targets.
func (r *Router) Deploy(ctx context.Context, route gantry.Route, targets []string) (*gantry.SwitchResult, error) {
	if route.Name == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "a route needs a name")
	}
	before, _, err := r.change(ctx, route.Name, true, func(e *gantry.RouteEntry) error {
		e.Route = route
		// A switch ends a canary's split in the table: at the final one
		// each router keeps the previous set for its sticky clients.
		e.Canary = nil
		if !sameAddrs(e.Active, targets) {
			e.Previous, e.Active, e.SwitchedAt = e.Active, slices.Clone(targets), r.now()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &gantry.SwitchResult{Route: route.Name, From: before.Active, To: targets}, nil
}

// Rollback makes the route's previous set active again.
func (r *Router) Rollback(ctx context.Context, name string) (*gantry.SwitchResult, error) {
	before, after, err := r.change(ctx, name, false, func(e *gantry.RouteEntry) error {
		if len(e.Previous) == 0 {
			return gantry.Errorf(gantry.EINVALID, "route %q has no previous target set to roll back to", name)
		}
		e.Previous, e.Active, e.SwitchedAt, e.Canary = e.Active, e.Previous, r.now(), nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &gantry.SwitchResult{Route: name, From: before.Active, To: after.Active}, nil
}

// SetPreview sets (or, with no targets, clears) the preview set.
func (r *Router) SetPreview(ctx context.Context, name string, targets []string) error {
	_, _, err := r.change(ctx, name, false, func(e *gantry.RouteEntry) error {
		e.Preview = slices.Clone(targets)
		return nil
	})
	return err
}

// Pause holds the route's requests (or its writes only) on every router.
func (r *Router) Pause(ctx context.Context, name string, writesOnly bool) error {
	_, _, err := r.change(ctx, name, false, func(e *gantry.RouteEntry) error {
		e.Paused, e.WritesOnly = true, writesOnly
		return nil
	})
	return err
}

// Resume lets the route's held requests go.
func (r *Router) Resume(ctx context.Context, name string) error {
	_, _, err := r.change(ctx, name, false, func(e *gantry.RouteEntry) error {
		e.Paused, e.WritesOnly = false, false
		return nil
	})
	return err
}

// Maintenance turns the route's maintenance page on or off.
func (r *Router) Maintenance(ctx context.Context, name string, on bool, message string) error {
	_, _, err := r.change(ctx, name, false, func(e *gantry.RouteEntry) error {
		e.Maintenance, e.MaintenanceMessage = on, message
		if !on {
			e.MaintenanceMessage = ""
		}
		return nil
	})
	return err
}

// RemoveRoute drops the route from the table.
func (r *Router) RemoveRoute(ctx context.Context, name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, err := r.Store.FindRoutes(ctx)
	if err != nil {
		return err
	}
	n := len(t.Routes)
	t.Routes = slices.DeleteFunc(t.Routes, func(e gantry.RouteEntry) bool { return e.Route.Name == name })
	if len(t.Routes) == n {
		return gantry.Errorf(gantry.ENOTFOUND, "route %q not found", name)
	}
	if err := r.Store.PutRoutes(ctx, t); err != nil {
		return err
	}
	return r.WaitApplied(ctx, t.Version, applyMargin)
}

// Status is the table as the control plane wants it served, each target
// with the figures the routers report for it, summed: requests, 5xx
// answers and latency over every router. A target counts as healthy when
// every router that reports it says so (and when none reports it yet).
func (r *Router) Status(ctx context.Context) ([]gantry.RouteStatus, error) {
	t, err := r.Store.FindRoutes(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := r.Store.ListRouterReports(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]gantry.RouteStatus, 0, len(t.Routes))
	for _, e := range t.Routes {
		st := gantry.RouteStatus{Route: e.Route, Previous: e.Previous, Paused: e.Paused, WritesOnly: e.WritesOnly,
			Maintenance: e.Maintenance, SwitchedAt: e.SwitchedAt}
		st.Active = sumTargets(e.Route.Name, e.Active, rs, func(s gantry.RouteStatus) []gantry.TargetStatus { return s.Active })
		if len(e.Preview) > 0 {
			st.Preview = sumTargets(e.Route.Name, e.Preview, rs, func(s gantry.RouteStatus) []gantry.TargetStatus { return s.Preview })
		}
		out = append(out, st)
	}
	return out, nil
}

func sumTargets(route string, addrs []string, live []*gantry.RouterReport, set func(gantry.RouteStatus) []gantry.TargetStatus) []gantry.TargetStatus {
	out := make([]gantry.TargetStatus, len(addrs))
	for i, a := range addrs {
		ts := gantry.TargetStatus{Addr: a, Healthy: true}
		for _, rr := range live {
			for _, s := range rr.Routes {
				if s.Route.Name != route {
					continue
				}
				for _, got := range set(s) {
					if got.Addr != a {
						continue
					}
					ts.Healthy = ts.Healthy && got.Healthy
					ts.InFlight += got.InFlight
					ts.Requests += got.Requests
					ts.Errors5xx += got.Errors5xx
					ts.LatencySum += got.LatencySum
					ts.LatencyP99 = max(ts.LatencyP99, got.LatencyP99)
					if got.LastCheck.After(ts.LastCheck) {
						ts.LastCheck, ts.LastError = got.LastCheck, got.LastError
					}
				}
			}
		}
		out[i] = ts
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func sameAddrs(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
