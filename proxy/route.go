package proxy

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/prometheus/client_golang/prometheus"
)

// Route defaults, applied when a gantry.Route leaves a field at zero.
const (
	defaultDeployTimeout = 30 * time.Second
	defaultDrainTimeout  = 30 * time.Second
	defaultPauseTimeout  = 30 * time.Second
	defaultPauseQueue    = 1000
)

// route is the live state of one named route. The hot path reads only atomic
// pointers; the mutexes serialise the control plane.
type route struct {
	name string
	r    *Router
	cfg  atomic.Pointer[gantry.Route]

	active  atomic.Pointer[targetSet]
	preview atomic.Pointer[targetSet]
	pause   atomic.Pointer[pauseGate]
	maint   atomic.Pointer[maintenance]
	// canary, when set, splits requests between active and a candidate.
	canary atomic.Pointer[canarySplit]

	// passing counts requests past the gate (writes also in passingWrites),
	// so Pause can wait until the requests it did not hold have finished.
	passing       atomic.Int64
	passingWrites atomic.Int64

	// opMu serialises health rounds and switches of this route; it is not
	// held while draining, so a rollback never waits for a drain.
	opMu sync.Mutex

	mu         sync.Mutex // guards the fields below
	live       bool       // in the route table (false during a first deploy)
	targets    map[string]*target
	previous   *targetSet
	switchedAt time.Time
	switches   int64

	metrics routeMetrics
}

type routeMetrics struct {
	latency  prometheus.Observer
	inflight prometheus.Gauge
}

// withRouteDefaults fills defaults and normalises hosts; it rejects what the
// router could not serve.
func withRouteDefaults(in gantry.Route) (*gantry.Route, error) {
	rc := in
	if rc.Name == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "route name is empty")
	}
	if len(rc.Hosts) == 0 && len(rc.PreviewHosts) == 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "route %q has no hosts", rc.Name)
	}
	norm := func(hs []string) ([]string, error) {
		out := make([]string, 0, len(hs))
		for _, h := range hs {
			n, err := normalizeRouteHost(h)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	var err error
	if rc.Hosts, err = norm(rc.Hosts); err != nil {
		return nil, err
	}
	if rc.PreviewHosts, err = norm(rc.PreviewHosts); err != nil {
		return nil, err
	}
	if rc.PathPrefix != "" && !strings.HasPrefix(rc.PathPrefix, "/") {
		return nil, gantry.Errorf(gantry.EINVALID, "route %q: path prefix %q must start with /", rc.Name, rc.PathPrefix)
	}
	switch rc.Balance {
	case "":
		rc.Balance = BalanceLeastInFlight
	case BalanceLeastInFlight, BalanceRoundRobin:
	default:
		return nil, gantry.Errorf(gantry.EINVALID, "route %q: balance %q: want %s or %s", rc.Name, rc.Balance, BalanceLeastInFlight, BalanceRoundRobin)
	}
	rc.Health = rc.Health.WithDefaults()
	if rc.DeployTimeout <= 0 {
		rc.DeployTimeout = defaultDeployTimeout
	}
	if rc.DrainTimeout <= 0 {
		rc.DrainTimeout = defaultDrainTimeout
	}
	if rc.PauseTimeout <= 0 {
		rc.PauseTimeout = defaultPauseTimeout
	}
	if rc.PauseQueue <= 0 {
		rc.PauseQueue = defaultPauseQueue
	}
	if rc.MaxBodyBytes < 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "route %q: max body bytes %d is negative", rc.Name, rc.MaxBodyBytes)
	}
	return &rc, nil
}

// validateTargets checks that every target is host:port and that none repeats.
func validateTargets(name string, addrs []string) error {
	seen := map[string]bool{}
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			return gantry.Errorf(gantry.EINVALID, "route %q: target %q: want host:port", name, a)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			return gantry.Errorf(gantry.EINVALID, "route %q: target %q: bad port", name, a)
		}
		if seen[a] {
			return gantry.Errorf(gantry.EINVALID, "route %q: target %q is listed twice", name, a)
		}
		seen[a] = true
	}
	return nil
}

func (r *Router) newRoute(name string) *route {
	rt := &route{name: name, r: r, targets: map[string]*target{}}
	if m := r.cfg.Metrics; m != nil {
		rt.metrics.latency = m.latency.WithLabelValues(name)
		rt.metrics.inflight = m.inflight.WithLabelValues(name)
	}
	return rt
}

// targetsFor returns the route's target objects for addrs, creating (and
// starting the health checks of) those it does not have yet. New targets
// start unhealthy unless assumeHealthy, which Restore uses so traffic flows
// at once while the checkers re-verify.
func (rt *route) targetsFor(addrs []string, hc gantry.HealthCheck, assumeHealthy bool) []*target {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := make([]*target, 0, len(addrs))
	for _, a := range addrs {
		t, ok := rt.targets[a]
		if !ok {
			t = newTarget(a, hc, rt.r.changed.notify)
			t.healthy.Store(assumeHealthy)
			if m := rt.r.cfg.Metrics; m != nil {
				for c := range t.metrics.byClass {
					t.metrics.byClass[c] = m.requests.WithLabelValues(rt.name, a, statusClassLabel[c])
				}
				t.metrics.health = m.health.WithLabelValues(rt.name, a)
				if assumeHealthy {
					t.metrics.health.Set(1)
				}
			}
			rt.targets[a] = t
			rt.r.startChecker(rt, t)
		}
		out = append(out, t)
	}
	return out
}

// collect stops the checkers of targets no set refers to any more. Callers
// hold opMu, so no health round is using a target it would drop.
func (rt *route) collect() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	act, pre := rt.active.Load(), rt.preview.Load()
	for a, t := range rt.targets {
		if act.contains(t) || pre.contains(t) || rt.previous.contains(t) || rt.canary.Load().holds(t) {
			continue
		}
		t.stop()
		t.conns.closeIdle(true)
		delete(rt.targets, a)
		if m := rt.r.cfg.Metrics; m != nil {
			m.forgetTarget(rt.name, a)
		}
	}
}

func (rt *route) stopAll() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, t := range rt.targets {
		t.stop()
		t.conns.closeIdle(true)
	}
}

func (rt *route) status() gantry.RouteStatus {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	st := gantry.RouteStatus{
		Route:       *rt.cfg.Load(),
		Active:      []gantry.TargetStatus{},
		Previous:    rt.previous.addrList(),
		Maintenance: rt.maint.Load() != nil,
		SwitchedAt:  rt.switchedAt,
		Switches:    rt.switches,
	}
	if s := rt.active.Load(); s != nil {
		for _, t := range s.targets {
			st.Active = append(st.Active, t.status())
		}
	}
	if s := rt.preview.Load(); s != nil {
		for _, t := range s.targets {
			st.Preview = append(st.Preview, t.status())
		}
	}
	if g := rt.pause.Load(); g != nil {
		st.Paused = true
		st.WritesOnly = g.writesOnly.Load()
	}
	return st
}
