package proxy

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/gantry-dev/gantry"
)

// State is what a router needs to come back after a restart exactly as it
// was; the caller persists it (atomically) on every OnChange.
type State struct {
	Routes []RouteState `json:"routes"`
}

// RouteState is one route in a State.
type RouteState struct {
	Route              gantry.Route `json:"route"`
	Active             []string     `json:"active"`
	Previous           []string     `json:"previous,omitempty"`
	Preview            []string     `json:"preview,omitempty"`
	Paused             bool         `json:"paused,omitempty"`
	WritesOnly         bool         `json:"writes_only,omitempty"`
	Maintenance        bool         `json:"maintenance,omitempty"`
	MaintenanceMessage string       `json:"maintenance_message,omitempty"`
	SwitchedAt         time.Time    `json:"switched_at"`
	// Canary is the route's split while a canary runs (its figures are
	// not kept).
	Canary *gantry.CanarySplit `json:"canary,omitempty"`
	// CanaryTail is, after a canary's final switch, the previous release
	// still served to its sticky clients until its bound.
	CanaryTail *CanaryTail `json:"canary_tail,omitempty"`
}

// CanaryTail is a canary's sticky tail in a State: the split it ended
// (labels and cookie lifetime), the set the final switch left, and when
// the tail ends.
type CanaryTail struct {
	Split gantry.CanarySplit `json:"split"`
	Old   []string           `json:"old"`
	Until time.Time          `json:"until"`
}

// Snapshot returns the routes and their target sets, sorted by name.
func (r *Router) Snapshot() State {
	r.mu.Lock()
	rts := make([]*route, 0, len(r.routes))
	for _, rt := range r.routes {
		if rt.isLive() {
			rts = append(rts, rt)
		}
	}
	r.mu.Unlock()
	sort.Slice(rts, func(i, j int) bool { return rts[i].name < rts[j].name })
	s := State{Routes: make([]RouteState, 0, len(rts))}
	for _, rt := range rts {
		rt.mu.Lock()
		rs := RouteState{
			Route:      *rt.cfg.Load(),
			Active:     rt.active.Load().addrList(),
			Previous:   rt.previous.addrList(),
			Preview:    rt.preview.Load().addrList(),
			SwitchedAt: rt.switchedAt,
		}
		rt.mu.Unlock()
		if g := rt.pause.Load(); g != nil {
			rs.Paused, rs.WritesOnly = true, g.writesOnly.Load()
		}
		if m := rt.maint.Load(); m != nil {
			rs.Maintenance, rs.MaintenanceMessage = true, m.message
		}
		if cs := rt.canary.Load(); cs != nil && cs.cand.Load() != nil {
			split := cs.cfg
			rs.Canary = &split
		} else if cs != nil && r.now().Before(cs.until) {
			rs.CanaryTail = &CanaryTail{Split: cs.cfg, Old: cs.old.Load().addrList(), Until: cs.until}
		}
		s.Routes = append(s.Routes, rs)
	}
	return s
}

// Restore installs routes and target sets as they were, replacing routes of
// the same name. Targets are assumed healthy, so traffic flows at once, and
// the health checkers re-check them immediately. Nothing is installed if any
// route is invalid or two routes claim the same host.
func (r *Router) Restore(ctx context.Context, s State) error {
	cfgs := make([]*gantry.Route, len(s.Routes))
	names := map[string]bool{}
	for i, rs := range s.Routes {
		cfg, err := withRouteDefaults(rs.Route)
		if err != nil {
			return err
		}
		if names[cfg.Name] {
			return gantry.Errorf(gantry.EINVALID, "state lists route %q twice", cfg.Name)
		}
		names[cfg.Name] = true
		var cand, old []string
		if rs.Canary != nil {
			cand = rs.Canary.Candidate
		}
		if rs.CanaryTail != nil {
			old = rs.CanaryTail.Old
		}
		for _, addrs := range [][]string{rs.Active, rs.Previous, rs.Preview, cand, old} {
			if err := validateTargets(cfg.Name, addrs); err != nil {
				return err
			}
		}
		cfgs[i] = cfg
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return gantry.Errorf(gantry.EUNAVAILABLE, "router is closed")
	}
	old := map[string]*route{}
	added := make([]*route, len(s.Routes))
	for i, rs := range s.Routes {
		if prev, ok := r.routes[cfgs[i].Name]; ok {
			old[cfgs[i].Name] = prev
		}
		rt := r.newRoute(cfgs[i].Name)
		rt.cfg.Store(cfgs[i])
		rt.live = true
		rt.switchedAt = rs.SwitchedAt
		r.routes[rt.name] = rt
		added[i] = rt
	}
	tb, err := r.buildTableLocked(nil, nil)
	if err != nil {
		for _, rt := range added {
			delete(r.routes, rt.name)
		}
		for n, rt := range old {
			r.routes[n] = rt
		}
		r.mu.Unlock()
		return err
	}
	// Targets (and their checkers) start only once the state is accepted.
	for i, rs := range s.Routes {
		rt, hc := added[i], cfgs[i].Health
		if len(rs.Active) > 0 {
			rt.active.Store(newTargetSet(rt.targetsFor(rs.Active, hc, true)))
		}
		if len(rs.Previous) > 0 {
			rt.previous = newTargetSet(rt.targetsFor(rs.Previous, hc, true))
		}
		if len(rs.Preview) > 0 {
			rt.preview.Store(newTargetSet(rt.targetsFor(rs.Preview, hc, false)))
		}
		if rs.Paused {
			g := &pauseGate{}
			g.writesOnly.Store(rs.WritesOnly)
			rt.pause.Store(g)
		}
		if rs.Maintenance {
			rt.maint.Store(&maintenance{message: rs.MaintenanceMessage})
		}
		if rs.Canary != nil && len(rs.Canary.Candidate) > 0 {
			rt.restoreCanary(*rs.Canary, r.now())
		} else if t := rs.CanaryTail; t != nil && len(t.Old) > 0 && r.now().Before(t.Until) {
			r.restoreTail(rt, *t)
		}
	}
	r.table.Store(tb)
	r.mu.Unlock()
	for _, rt := range old {
		if !slices.Contains(added, rt) {
			rt.stopAll()
			if g := rt.pause.Swap(nil); g != nil {
				g.release()
			}
		}
	}
	return nil
}
