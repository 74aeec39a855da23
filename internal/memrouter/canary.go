package memrouter

import (
	"context"
	"time"

	"github.com/gantry-dev/gantry"
)

var _ gantry.CanaryRouter = (*Router)(nil)

// SetCanary records the split; new candidate targets are health-gated.
func (r *Router) SetCanary(ctx context.Context, name string, split gantry.CanarySplit) error {
	err := r.setCanary(ctx, name, split)
	r.record(Call{Op: "set-canary", Route: name, Targets: append([]string(nil), split.Candidate...), Weight: split.Weight}, err)
	return err
}

func (r *Router) setCanary(ctx context.Context, name string, split gantry.CanarySplit) error {
	var hc gantry.HealthCheck
	var cur *gantry.CanarySplit
	if err := r.with(name, func(rs *RouteState) { hc, cur = rs.Route.Health, rs.Canary }); err != nil {
		return err
	}
	if cur == nil || !sameSet(cur.Candidate, split.Candidate) {
		if err := r.gate(ctx, name, split.Candidate, hc); err != nil {
			return err
		}
	}
	return r.with(name, func(rs *RouteState) {
		s := split
		rs.Canary = &s
		rs.CanarySince = time.Now()
	})
}

// ClearCanary forgets the split.
func (r *Router) ClearCanary(ctx context.Context, name string) error {
	err := r.with(name, func(rs *RouteState) { rs.Canary = nil })
	r.record(Call{Op: "clear-canary", Route: name}, err)
	return err
}

// CanaryStatus reports the split with the figures CanaryFigures gives for
// its step (none when it is nil).
func (r *Router) CanaryStatus(ctx context.Context, name string) (*gantry.CanaryStatus, error) {
	var st *gantry.CanaryStatus
	err := r.with(name, func(rs *RouteState) {
		if rs.Canary != nil {
			st = &gantry.CanaryStatus{Route: name, Split: *rs.Canary, Since: rs.CanarySince}
		}
	})
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "route %q has no canary", name)
	}
	r.mu.Lock()
	figs := r.CanaryFigures
	r.mu.Unlock()
	if figs != nil {
		st.Stable, st.Candidate = figs(st.Split)
	}
	return st, nil
}

// SetCanaryFigures sets the function that makes up a step's figures, as
// traffic through the real router would.
func (r *Router) SetCanaryFigures(f func(split gantry.CanarySplit) (stable, candidate gantry.SlotFigures)) {
	r.mu.Lock()
	r.CanaryFigures = f
	r.mu.Unlock()
}
