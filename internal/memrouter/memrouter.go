// Package memrouter is an in-memory traffic router control plane
// (gantry.Router) for fast tests of the rollout engine (package deploy). It
// keeps per route what the real router keeps (active, previous and preview
// targets, paused, writes-only, maintenance) and health-gates a switch with
// a real GET of each target's health path, but proxies no request: tests
// read what a route serves from Serving and set the counters the
// post-switch watch reads with AddTraffic. Every call is recorded.
//
// It is for tests only: it must never be wired into the gantry binary, and
// it must not import package proxy; acceptance tests compare it with the
// real router instead.
package memrouter

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// Call is one recorded call.
type Call struct {
	Op      string // "deploy", "rollback", "set-preview", "pause", "resume", "maintenance", "remove-route", "set-canary", "clear-canary"
	Route   string
	Targets []string
	On      bool // pause: writes only; maintenance: on
	Weight  int  // set-canary: the candidate's percent
	Err     string
}

// RouteState is a route as the router keeps it.
type RouteState struct {
	Route       gantry.Route
	Active      []string
	Previous    []string
	Preview     []string
	Paused      bool
	WritesOnly  bool
	Maintenance bool
	Switches    int64
	// Canary is the split SetCanary set (nil: none, or a switch ended it).
	Canary      *gantry.CanarySplit
	CanarySince time.Time
}

type counter struct {
	requests, errors int64
	latency          time.Duration
}

// Router is the in-memory router; the zero value is not usable: call New.
type Router struct {
	// Client probes targets (default: a short-timeout client).
	Client *http.Client
	// Tries is how many probes a target gets before a switch fails (default 20, 5ms apart).
	Tries int

	mu       sync.Mutex
	routes   map[string]*RouteState
	calls    []Call
	counters map[string]*counter
	// CanaryFigures makes up the figures of a canary step (SetCanaryFigures).
	CanaryFigures func(split gantry.CanarySplit) (stable, candidate gantry.SlotFigures)
}

var _ gantry.Router = (*Router)(nil)

// New returns a router with no routes.
func New() *Router {
	return &Router{routes: map[string]*RouteState{}, counters: map[string]*counter{},
		Client: &http.Client{Timeout: 2 * time.Second}}
}

func (r *Router) record(c Call, err error) {
	if err != nil {
		c.Err = err.Error()
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

// Calls returns the calls recorded so far; with ops, only those.
func (r *Router) Calls(ops ...string) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Call
	for _, c := range r.calls {
		if len(ops) == 0 || contains(ops, c.Op) {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the calls recorded so far.
func (r *Router) ResetCalls() {
	r.mu.Lock()
	r.calls = nil
	r.mu.Unlock()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// probe checks one target the way the route's health check says.
func (r *Router) probe(ctx context.Context, addr string, hc gantry.HealthCheck) error {
	tries := r.Tries
	if tries <= 0 {
		tries = 20
	}
	var last error
	for i := 0; i < tries; i++ {
		last = r.probeOnce(ctx, addr, hc)
		if last == nil || ctx.Err() != nil {
			return last
		}
		time.Sleep(5 * time.Millisecond)
	}
	return last
}

func (r *Router) probeOnce(ctx context.Context, addr string, hc gantry.HealthCheck) error {
	if hc.Path == "" {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+hc.Path, nil)
	if err != nil {
		return err
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	lo, hi := hc.StatusMin, hc.StatusMax
	if lo == 0 {
		lo, hi = 200, 399
	}
	if resp.StatusCode < lo || resp.StatusCode > hi {
		return fmt.Errorf("GET %s: status %d", hc.Path, resp.StatusCode)
	}
	return nil
}

func (r *Router) gate(ctx context.Context, name string, targets []string, hc gantry.HealthCheck) error {
	for _, a := range targets {
		if err := r.probe(ctx, a, hc); err != nil {
			return gantry.Errorf(gantry.EUNAVAILABLE, "route %q: target %s did not become healthy: %v", name, a, err)
		}
	}
	return nil
}

// Deploy creates or updates the route and switches it to targets once each
// answers its health check; when one does not, nothing changes.
func (r *Router) Deploy(ctx context.Context, route gantry.Route, targets []string) (*gantry.SwitchResult, error) {
	res, err := r.deploy(ctx, route, targets)
	r.record(Call{Op: "deploy", Route: route.Name, Targets: append([]string(nil), targets...)}, err)
	return res, err
}

func (r *Router) deploy(ctx context.Context, route gantry.Route, targets []string) (*gantry.SwitchResult, error) {
	if route.Name == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "route name is empty")
	}
	if len(route.Hosts) == 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "route %q has no hosts", route.Name)
	}
	if len(targets) == 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "route %q: no targets to deploy", route.Name)
	}
	if err := r.gate(ctx, route.Name, targets, route.Health); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.routes[route.Name]
	if rs == nil {
		rs = &RouteState{}
		r.routes[route.Name] = rs
	}
	rs.Route = route
	rs.Canary = nil
	res := &gantry.SwitchResult{Route: route.Name, From: rs.Active, To: append([]string(nil), targets...)}
	if !sameSet(rs.Active, targets) {
		if len(rs.Active) > 0 {
			rs.Previous = rs.Active
		}
		rs.Active = append([]string(nil), targets...)
		rs.Switches++
	}
	return res, nil
}

// Rollback switches a route back to its previous targets, health-gated.
func (r *Router) Rollback(ctx context.Context, name string) (*gantry.SwitchResult, error) {
	res, err := r.rollback(ctx, name)
	c := Call{Op: "rollback", Route: name}
	if res != nil {
		c.Targets = res.To
	}
	r.record(c, err)
	return res, err
}

func (r *Router) rollback(ctx context.Context, name string) (*gantry.SwitchResult, error) {
	r.mu.Lock()
	rs := r.routes[name]
	if rs == nil {
		r.mu.Unlock()
		return nil, gantry.Errorf(gantry.ENOTFOUND, "route %q not found", name)
	}
	prev, hc := rs.Previous, rs.Route.Health
	r.mu.Unlock()
	if len(prev) == 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "route %q has no previous target set to roll back to", name)
	}
	if err := r.gate(ctx, name, prev, hc); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &gantry.SwitchResult{Route: name, From: rs.Active, To: prev}
	rs.Active, rs.Previous, rs.Canary = prev, rs.Active, nil
	rs.Switches++
	return res, nil
}

func (r *Router) with(name string, fn func(rs *RouteState)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.routes[name]
	if rs == nil {
		return gantry.Errorf(gantry.ENOTFOUND, "route %q not found", name)
	}
	fn(rs)
	return nil
}

// SetPreview sets or clears the preview targets (not health-gated).
func (r *Router) SetPreview(ctx context.Context, name string, targets []string) error {
	err := r.with(name, func(rs *RouteState) { rs.Preview = append([]string(nil), targets...) })
	r.record(Call{Op: "set-preview", Route: name, Targets: append([]string(nil), targets...)}, err)
	return err
}

// Pause holds the route's requests (only writes when writesOnly).
func (r *Router) Pause(ctx context.Context, name string, writesOnly bool) error {
	err := r.with(name, func(rs *RouteState) { rs.Paused, rs.WritesOnly = true, writesOnly })
	r.record(Call{Op: "pause", Route: name, On: writesOnly}, err)
	return err
}

// Resume lets the route's requests through again.
func (r *Router) Resume(ctx context.Context, name string) error {
	err := r.with(name, func(rs *RouteState) { rs.Paused, rs.WritesOnly = false, false })
	r.record(Call{Op: "resume", Route: name}, err)
	return err
}

// Maintenance turns the route's maintenance page on or off.
func (r *Router) Maintenance(ctx context.Context, name string, on bool, message string) error {
	err := r.with(name, func(rs *RouteState) { rs.Maintenance = on })
	r.record(Call{Op: "maintenance", Route: name, On: on}, err)
	return err
}

// RemoveRoute forgets a route.
func (r *Router) RemoveRoute(ctx context.Context, name string) error {
	err := r.with(name, func(*RouteState) {})
	if err == nil {
		r.mu.Lock()
		delete(r.routes, name)
		r.mu.Unlock()
	}
	r.record(Call{Op: "remove-route", Route: name}, err)
	return err
}

// Status reports every route, sorted by name, with the counters set by
// AddTraffic.
func (r *Router) Status(ctx context.Context) ([]gantry.RouteStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.routes))
	for n := range r.routes {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]gantry.RouteStatus, 0, len(names))
	for _, n := range names {
		rs := r.routes[n]
		out = append(out, gantry.RouteStatus{Route: rs.Route, Active: r.targets(rs.Active), Previous: append([]string(nil), rs.Previous...),
			Preview: r.targets(rs.Preview), Paused: rs.Paused, WritesOnly: rs.WritesOnly, Maintenance: rs.Maintenance, Switches: rs.Switches})
	}
	return out, nil
}

func (r *Router) targets(addrs []string) []gantry.TargetStatus {
	var out []gantry.TargetStatus
	for _, a := range addrs {
		ts := gantry.TargetStatus{Addr: a, Healthy: true}
		if c := r.counters[a]; c != nil {
			ts.Requests, ts.Errors5xx, ts.LatencySum = c.requests, c.errors, c.latency
		}
		out = append(out, ts)
	}
	return out
}

// AddTraffic adds to a target's lifetime counters, as requests through the
// real router would.
func (r *Router) AddTraffic(addr string, requests, errors5xx int64, latency time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.counters[addr]
	if c == nil {
		c = &counter{}
		r.counters[addr] = c
	}
	c.requests += requests
	c.errors += errors5xx
	c.latency += latency
}

// Route returns a copy of a route's state.
func (r *Router) Route(name string) (RouteState, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.routes[name]
	if rs == nil {
		return RouteState{}, false
	}
	c := *rs
	c.Active = append([]string(nil), rs.Active...)
	c.Previous = append([]string(nil), rs.Previous...)
	c.Preview = append([]string(nil), rs.Preview...)
	return c, true
}

// Serving returns the active targets of a route, sorted (nil when none).
func (r *Router) Serving(name string) []string {
	rs, ok := r.Route(name)
	if !ok || len(rs.Active) == 0 {
		return nil
	}
	out := append([]string(nil), rs.Active...)
	sort.Strings(out)
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x]--; seen[x] < 0 {
			return false
		}
	}
	return true
}
