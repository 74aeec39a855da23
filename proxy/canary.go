package proxy

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry"
)

// ReleaseCookie is the cookie that keeps a client on one release during a
// canary and, within its lifetime, after the final switch.
const ReleaseCookie = "gantry_release"

var _ gantry.CanaryRouter = (*Router)(nil)

// canarySplit is a route's split between its active set (stable) and a
// candidate set, immutable but for its sets and figures; changing the split
// stores a new one. After the final switch it becomes a tail: the stable
// side is the set the switch left, still served to the clients whose
// cookie names it until the cookie's bound ends.
type canarySplit struct {
	cfg   gantry.CanarySplit
	since time.Time
	path  string // cookie path: the route's path prefix

	cand atomic.Pointer[targetSet] // nil in a tail
	// old is, in a tail, the set the final switch left; until bounds it.
	old   atomic.Pointer[targetSet]
	until time.Time

	stable, candidate, targeted *laneFigures
}

// laneFor picks the set a request goes to and the figures it counts in
// (nil outside a canary). It may add the release cookie to w's headers.
func (rt *route) laneFor(w http.ResponseWriter, req *http.Request, preview bool) (*atomic.Pointer[targetSet], *laneFigures) {
	if preview {
		return &rt.preview, nil
	}
	cs := rt.canary.Load()
	if cs == nil {
		return &rt.active, nil
	}
	return cs.choose(w, req, rt)
}

func (cs *canarySplit) choose(w http.ResponseWriter, req *http.Request, rt *route) (*atomic.Pointer[targetSet], *laneFigures) {
	label := ""
	if c, err := req.Cookie(ReleaseCookie); err == nil {
		label = c.Value
	}
	if cs.cand.Load() == nil {
		// A tail: the release a client was given stays its own for the
		// cookie's bound, while an instance of it is healthy.
		if label != "" && label == cs.cfg.StableRelease && rt.r.now().Before(cs.until) && cs.old.Load().anyHealthy() {
			return &cs.old, nil
		}
		return &rt.active, nil
	}
	if cs.matches(req) {
		return &cs.cand, cs.targeted
	}
	if label != "" {
		switch label {
		case cs.cfg.StableRelease:
			return &rt.active, cs.stable
		case cs.cfg.CandidateRelease:
			return &cs.cand, cs.candidate
		}
	}
	toCand := cs.cfg.Weight >= 100 || cs.cfg.Weight > 0 && rand.IntN(100) < cs.cfg.Weight
	give := cs.cfg.StableRelease
	if toCand {
		give = cs.cfg.CandidateRelease
	}
	if give != "" && cs.cfg.Sticky > 0 {
		w.Header().Add("Set-Cookie", (&http.Cookie{Name: ReleaseCookie, Value: give, Path: cs.path,
			MaxAge: int(cs.cfg.Sticky / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode}).String())
	}
	if toCand {
		return &cs.cand, cs.candidate
	}
	return &rt.active, cs.stable
}

// matches applies the targeted rule.
func (cs *canarySplit) matches(req *http.Request) bool {
	m := cs.cfg.Match
	if m == nil {
		return false
	}
	var v string
	var ok bool
	switch {
	case m.Header != "":
		vs := req.Header.Values(m.Header)
		if len(vs) > 0 {
			v, ok = vs[0], true
		}
	case m.Cookie != "":
		if c, err := req.Cookie(m.Cookie); err == nil {
			v, ok = c.Value, true
		}
	}
	return ok && (m.Value == "" || v == m.Value)
}

func (s *targetSet) anyHealthy() bool {
	if s == nil {
		return false
	}
	for _, t := range s.targets {
		if t.healthy.Load() {
			return true
		}
	}
	return false
}

// holds says whether the split still needs t (so collect keeps it).
func (cs *canarySplit) holds(t *target) bool {
	return cs != nil && (cs.cand.Load().contains(t) || cs.old.Load().contains(t))
}

// validCookieLabel keeps release labels to characters a cookie value may
// hold unquoted.
func validCookieLabel(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\",;\\", c) >= 0 {
			return false
		}
	}
	return true
}

// SetCanary starts or changes the split of a live route. A candidate set
// that changes passes a health round first, as a switch does.
func (r *Router) SetCanary(ctx context.Context, name string, split gantry.CanarySplit) error {
	rt, err := r.liveRoute(name)
	if err != nil {
		return err
	}
	switch {
	case len(split.Candidate) == 0:
		return gantry.Errorf(gantry.EINVALID, "route %q: a canary needs candidate targets", name)
	case split.Weight < 0 || split.Weight > 100:
		return gantry.Errorf(gantry.EINVALID, "route %q: canary weight %d: want 0 to 100", name, split.Weight)
	case split.StableRelease == split.CandidateRelease && split.StableRelease != "":
		return gantry.Errorf(gantry.EINVALID, "route %q: the stable and candidate labels are both %q", name, split.StableRelease)
	case !validCookieLabel(split.StableRelease) || !validCookieLabel(split.CandidateRelease):
		return gantry.Errorf(gantry.EINVALID, "route %q: release labels may not hold spaces, quotes, commas, semicolons or backslashes", name)
	case split.Match != nil && (split.Match.Header == "") == (split.Match.Cookie == ""):
		return gantry.Errorf(gantry.EINVALID, "route %q: a canary match names one header or one cookie", name)
	}
	if err := validateTargets(name, split.Candidate); err != nil {
		return err
	}
	rt.opMu.Lock()
	err = r.setCanaryLocked(ctx, rt, split)
	rt.opMu.Unlock()
	if err == nil {
		r.notifyChange()
	}
	return err
}

func (r *Router) setCanaryLocked(ctx context.Context, rt *route, split gantry.CanarySplit) error {
	name := rt.name
	cfg := rt.cfg.Load()
	cur := rt.canary.Load()
	next := newCanarySplit(split, r.now(), cfg.PathPrefix)
	if cur != nil && cur.cand.Load() != nil && cur.cfg.Step == split.Step {
		// The same step with new settings keeps its figures.
		next.since, next.stable, next.candidate, next.targeted = cur.since, cur.stable, cur.candidate, cur.targeted
	}
	if cur != nil && cur.cand.Load().sameAddrs(split.Candidate) {
		next.cand.Store(cur.cand.Load())
	} else {
		ts := rt.targetsFor(split.Candidate, cfg.Health, false)
		if _, err := r.waitHealthy(ctx, rt, ts, cfg.DeployTimeout); err != nil {
			rt.collect()
			return err
		}
		for _, t := range ts {
			t.retired.Store(false)
		}
		next.cand.Store(newTargetSet(ts))
	}
	rt.canary.Store(next)
	r.log.Info("canary step", logKeyRoute, name, "step", split.Step, "weight", split.Weight, "candidate", next.cand.Load().addrList())
	if cur != nil && cur.cand.Load() == nil {
		r.endTail(rt, cur)
	}
	rt.collect()
	return nil
}

// newCanarySplit is a split with empty figures, for a new step.
func newCanarySplit(split gantry.CanarySplit, since time.Time, pathPrefix string) *canarySplit {
	return &canarySplit{cfg: split, since: since, path: cookiePath(pathPrefix),
		stable: new(laneFigures), candidate: new(laneFigures), targeted: new(laneFigures)}
}

func cookiePath(prefix string) string {
	if prefix == "" {
		return "/"
	}
	return prefix
}

// ClearCanary ends a split at once (an abort): every request goes to the
// active set, the release cookies of the candidate are ignored, and the
// requests still running on the candidate are drained before it returns,
// so the caller may stop it.
func (r *Router) ClearCanary(ctx context.Context, name string) error {
	rt, err := r.liveRoute(name)
	if err != nil {
		return err
	}
	rt.opMu.Lock()
	cs := rt.canary.Swap(nil)
	var retired []*target
	if cs != nil {
		retired = append(rt.leaving(cs.cand.Load()), rt.leaving(cs.old.Load())...)
	}
	rt.opMu.Unlock()
	if cs == nil {
		return nil
	}
	r.log.Info("canary cleared", logKeyRoute, name)
	r.notifyChange()
	r.drain(ctx, rt, retired, rt.cfg.Load().DrainTimeout)
	rt.opMu.Lock()
	rt.collect()
	rt.opMu.Unlock()
	return nil
}

// leaving marks the targets of s that no other set serves as retired, for
// a drain, and returns them.
func (rt *route) leaving(s *targetSet) []*target {
	if s == nil {
		return nil
	}
	act, pre := rt.active.Load(), rt.preview.Load()
	var out []*target
	for _, t := range s.targets {
		if !act.contains(t) && !pre.contains(t) {
			t.retired.Store(true)
			out = append(out, t)
		}
	}
	return out
}

// CanaryStatus reports a route's split and the figures of its step.
func (r *Router) CanaryStatus(ctx context.Context, name string) (*gantry.CanaryStatus, error) {
	rt, err := r.liveRoute(name)
	if err != nil {
		return nil, err
	}
	cs := rt.canary.Load()
	if cs == nil {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "route %q has no canary", name)
	}
	st := &gantry.CanaryStatus{Route: name, Split: cs.cfg, Since: cs.since,
		Stable: cs.stable.figures(), Candidate: cs.candidate.figures()}
	st.Candidate.Targeted = cs.targeted.requests.Load()
	if cs.cand.Load() == nil {
		st.Split.Weight = 100
	}
	return st, nil
}

// stickAfterSwitch runs inside the final switch of a canary (next is its
// candidate): the split becomes a tail that keeps the set the switch left
// (from) for the clients whose cookie names the stable release, up to the
// sticky bound. Those targets are not drained now but when the tail ends.
// Any other switch ends a split.
func (r *Router) stickAfterSwitch(rt *route, from, next *targetSet, retired []*target) []*target {
	cs := rt.canary.Load()
	if cs == nil {
		return retired
	}
	if cs.cand.Load() == nil || !cs.cand.Load().sameAddrs(next.addrs) || from == nil || cs.cfg.Sticky <= 0 {
		rt.canary.Store(nil)
		// A tail's set leaves with it, drained like any other.
		r.endTail(rt, cs)
		return retired
	}
	tail := &canarySplit{cfg: cs.cfg, since: cs.since, path: cs.path, until: r.now().Add(cs.cfg.Sticky),
		stable: cs.stable, candidate: cs.candidate, targeted: cs.targeted}
	tail.old.Store(from)
	for _, t := range retired {
		t.retired.Store(false)
	}
	r.installTail(rt, tail)
	r.log.Info("canary switched; the previous release stays for its sticky clients", logKeyRoute, rt.name, "until", tail.until.Format(time.RFC3339), "sticky", strconv.Itoa(int(cs.cfg.Sticky/time.Second))+"s")
	return nil
}

// installTail makes tail the route's split until its bound, then lets its
// set go.
func (r *Router) installTail(rt *route, tail *canarySplit) {
	rt.canary.Store(tail)
	time.AfterFunc(tail.until.Sub(r.now()), func() {
		rt.opMu.Lock()
		ended := rt.canary.CompareAndSwap(tail, nil)
		if ended {
			r.endTail(rt, tail)
			rt.collect()
		}
		rt.opMu.Unlock()
		if ended {
			r.notifyChange()
		}
	})
}

// restoreTail installs a tail kept in a snapshot (its set assumed healthy,
// as Restore assumes the active set is) for what is left of its bound.
func (r *Router) restoreTail(rt *route, t CanaryTail) {
	cfg := rt.cfg.Load()
	tail := newCanarySplit(t.Split, r.now(), cfg.PathPrefix)
	tail.until = t.Until
	tail.old.Store(newTargetSet(rt.targetsFor(t.Old, cfg.Health, true)))
	r.installTail(rt, tail)
}

// endTail drains, in the background, the set a tail kept (none for a
// split that is not a tail). Callers hold opMu and have already taken the
// split out of the route.
func (r *Router) endTail(rt *route, tail *canarySplit) {
	if tail.cand.Load() != nil {
		return
	}
	retired := rt.leaving(tail.old.Load())
	if len(retired) == 0 {
		return
	}
	timeout := rt.cfg.Load().DrainTimeout
	go func() {
		r.drain(context.Background(), rt, retired, timeout)
		rt.opMu.Lock()
		rt.collect()
		rt.opMu.Unlock()
	}()
}

// restoreCanary installs a split kept in a snapshot, its candidate assumed
// healthy as Restore assumes the active set is; its figures start again.
func (rt *route) restoreCanary(split gantry.CanarySplit, now time.Time) {
	cfg := rt.cfg.Load()
	cs := newCanarySplit(split, now, cfg.PathPrefix)
	cs.cand.Store(newTargetSet(rt.targetsFor(split.Candidate, cfg.Health, true)))
	rt.canary.Store(cs)
}
