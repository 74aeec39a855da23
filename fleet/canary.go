package fleet

import (
	"context"
	"slices"
	"time"

	"github.com/gantry-dev/gantry"
)

var _ gantry.CanaryRouter = (*Router)(nil)

// A canary on following routers is one more field of the route table: each
// router applies the split (a health round on new candidate targets first,
// as for a switch) and reports its own figures of the step; the control
// side sums them. The release cookie names releases, not routers, so a
// client keeps its release whichever router answers it.

// SetCanary starts or changes route name's split on every router.
func (r *Router) SetCanary(ctx context.Context, name string, split gantry.CanarySplit) error {
	split.Candidate = slices.Clone(split.Candidate)
	_, _, err := r.change(ctx, name, false, func(e *gantry.RouteEntry) error {
		e.Canary = &split
		return nil
	})
	return err
}

// ClearCanary ends the split on every router: each sends every request to
// the active set again and drains the candidate's before it applies.
func (r *Router) ClearCanary(ctx context.Context, name string) error {
	t, err := r.Store.FindRoutes(ctx)
	if err != nil {
		return err
	}
	if e := t.Find(name); e == nil || e.Canary == nil {
		return nil
	}
	_, _, err = r.change(ctx, name, false, func(e *gantry.RouteEntry) error {
		e.Canary = nil
		return nil
	})
	return err
}

// CanaryStatus is the table's split with the figures of its step summed
// over the routers that report it: counts added, latency samples merged in
// proportion to each router's requests. A router still on an earlier step
// (its report is up to a heartbeat old) does not count.
func (r *Router) CanaryStatus(ctx context.Context, name string) (*gantry.CanaryStatus, error) {
	t, err := r.Store.FindRoutes(ctx)
	if err != nil {
		return nil, err
	}
	e := t.Find(name)
	if e == nil || e.Canary == nil {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "route %q has no canary", name)
	}
	rs, err := r.Store.ListRouterReports(ctx)
	if err != nil {
		return nil, err
	}
	st := &gantry.CanaryStatus{Route: name, Split: *e.Canary}
	var stable, cand []gantry.SlotFigures
	for _, rr := range rs {
		for _, s := range rr.Routes {
			c := s.Canary
			if s.Route.Name != name || c == nil || c.Split.Step != e.Canary.Step || !sameAddrs(c.Split.Candidate, e.Canary.Candidate) {
				continue
			}
			stable, cand = append(stable, c.Stable), append(cand, c.Candidate)
			if st.Since.IsZero() || c.Since.Before(st.Since) {
				st.Since = c.Since
			}
		}
	}
	st.Stable, st.Candidate = mergeFigures(stable), mergeFigures(cand)
	return st, nil
}

// mergeFigures adds up one side's figures from several routers. Each
// router's latency sample is uniform over its own requests; taking from
// each a share in proportion to its requests keeps the merged sample
// uniform over all of them.
func mergeFigures(parts []gantry.SlotFigures) gantry.SlotFigures {
	var out gantry.SlotFigures
	scale := 1.0
	for _, p := range parts {
		out.Requests += p.Requests
		out.Errors5xx += p.Errors5xx
		out.Targeted += p.Targeted
		if p.Requests > 0 {
			scale = min(scale, float64(len(p.LatencyMicros))/float64(p.Requests))
		}
	}
	for _, p := range parts {
		n := min(int(float64(p.Requests)*scale+0.5), len(p.LatencyMicros))
		for j := range n {
			// Evenly spaced picks: a sample not yet full is in arrival order.
			out.LatencyMicros = append(out.LatencyMicros, p.LatencyMicros[j*len(p.LatencyMicros)/n])
		}
	}
	if len(out.LatencyMicros) > 0 {
		sorted := slices.Sorted(slices.Values(out.LatencyMicros))
		out.P50 = time.Duration(nearestRank(sorted, 0.50)) * time.Microsecond
		out.P99 = time.Duration(nearestRank(sorted, 0.99)) * time.Microsecond
	}
	return out
}

// nearestRank is the nearest-rank q-quantile of sorted values (not empty).
func nearestRank(sorted []int64, q float64) int64 {
	rank := int(q*float64(len(sorted)) + 0.999999)
	return sorted[max(1, min(rank, len(sorted)))-1]
}

// applyCanary makes the local router run e's split. switched says this
// apply just moved the route's active set, which ended or (at a canary's
// final switch) turned the local split into its sticky tail: that is not
// cleared.
func (f *Follower) applyCanary(ctx context.Context, e gantry.RouteEntry, prev gantry.RouteEntry, known, switched bool) error {
	cr, ok := f.Local.(gantry.CanaryRouter)
	switch {
	case e.Canary != nil && !ok:
		return gantry.Errorf(gantry.EINVALID, "route %q: this router cannot split traffic for a canary", e.Route.Name)
	case e.Canary != nil:
		if known && !switched && prev.Canary != nil && equalSplits(*prev.Canary, *e.Canary) {
			if _, err := cr.CanaryStatus(ctx, e.Route.Name); err == nil {
				return nil
			}
		}
		return cr.SetCanary(ctx, e.Route.Name, *e.Canary)
	case ok && known && prev.Canary != nil && !switched:
		return cr.ClearCanary(ctx, e.Route.Name)
	}
	return nil
}

func equalSplits(a, b gantry.CanarySplit) bool {
	return a.Weight == b.Weight && a.Step == b.Step && a.Sticky == b.Sticky && a.StableRelease == b.StableRelease &&
		a.CandidateRelease == b.CandidateRelease && sameAddrs(a.Candidate, b.Candidate) &&
		(a.Match == nil) == (b.Match == nil) && (a.Match == nil || *a.Match == *b.Match)
}

// canaryFigures adds to routes the local router's canary figures of the
// routes whose table entry runs a canary.
func (f *Follower) canaryFigures(ctx context.Context, routes []gantry.RouteStatus, last map[string]gantry.RouteEntry) {
	cr, ok := f.Local.(gantry.CanaryRouter)
	if !ok {
		return
	}
	for i := range routes {
		name := routes[i].Route.Name
		if e, ok := last[name]; !ok || e.Canary == nil {
			continue
		}
		if st, err := cr.CanaryStatus(ctx, name); err == nil {
			routes[i].Canary = st
		}
	}
}
