package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// Source is where a following router gets the route table and sends its
// reports: a control-plane server's API (api.Client), whichever server it is.
type Source interface {
	// WatchRoutes returns the route table once its version is past after,
	// or the table as it is when the server's wait ends first.
	WatchRoutes(ctx context.Context, after int64) (*gantry.RouteTable, error)
	ReportRouter(ctx context.Context, r *gantry.RouterReport) error
}

// DefaultHeartbeat is how often a follower reports while nothing changes,
// so the control plane knows it is alive and sees its traffic figures.
const DefaultHeartbeat = time.Second

// Follower makes a local router serve the control plane's route table.
// While the control plane does not answer it keeps serving what it last
// applied (the local router keeps its own state) and tries again, backing
// off up to a second.
type Follower struct {
	Name   string // how the control plane knows this router
	URL    string // where it serves traffic
	Source Source
	Local  gantry.Router
	// Heartbeat: see DefaultHeartbeat (zero means it).
	Heartbeat time.Duration
	Logger    *slog.Logger
	// OnApplied, when set, is called after each version is applied.
	OnApplied func(version int64)

	// reportMu sends one report at a time, so that an older one (a
	// heartbeat built before a change was applied) never lands after a
	// newer one.
	reportMu sync.Mutex
	mu       sync.Mutex
	applied  int64
	failed   int64
	err      string
	last     map[string]gantry.RouteEntry // entries as last applied
	up       bool                         // the control plane answered last time
	asked    bool                         // the control plane has been asked once
	// reportErr is the last report's error, logged when it changes: a
	// router whose reports are refused (a token without the deployer role)
	// says so instead of failing quietly.
	reportErr string
}

// Applied returns the version of the route table this router serves.
func (f *Follower) Applied() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied
}

// Run follows the table until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	go f.heartbeat(ctx)
	wait := 50 * time.Millisecond
	var after int64
	for ctx.Err() == nil {
		t, err := f.Source.WatchRoutes(ctx, after)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.setUp(false, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
			continue
		}
		wait = 50 * time.Millisecond
		f.setUp(true, nil)
		if t.Version <= after {
			continue // the server's wait ended with nothing new
		}
		after = t.Version
		f.apply(ctx, t)
		f.report(ctx)
	}
}

func (f *Follower) setUp(up bool, err error) {
	f.mu.Lock()
	was, first := f.up, !f.asked
	f.up, f.asked = up, true
	f.mu.Unlock()
	switch {
	case was && !up:
		f.logger().Warn("control plane unreachable; serving the last applied routes", "error", tokenHint(err))
	case !up && first:
		// Never reached since the start (a wrong address or token): say
		// so once, not only after having followed.
		f.logger().Warn("control plane not reached; serving the routes of the state file until it answers", "error", tokenHint(err))
	case !was && up:
		f.logger().Info("following the control plane")
	}
}

// apply makes the local router serve t, route by route; a route that fails
// (a target this router finds unhealthy) leaves that route as it was and
// the version reported as failed.
func (f *Follower) apply(ctx context.Context, t *gantry.RouteTable) {
	local, err := f.Local.Status(ctx)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	have := map[string]gantry.RouteStatus{}
	for _, st := range local {
		have[st.Route.Name] = st
	}
	f.mu.Lock()
	last := f.last
	f.mu.Unlock()
	next := map[string]gantry.RouteEntry{}
	for _, e := range t.Routes {
		name := e.Route.Name
		cur, served := have[name]
		prev, known := last[name]
		if err := f.applyEntry(ctx, e, cur, served, prev, known); err != nil {
			errs = append(errs, err)
			if known {
				next[name] = prev
			}
			continue
		}
		next[name] = e
	}
	for name := range have {
		if t.Find(name) == nil {
			if err := f.Local.RemoveRoute(ctx, name); err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
				errs = append(errs, err)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = next
	if err := errors.Join(errs...); err != nil {
		f.failed, f.err = t.Version, err.Error()
		f.logger().Error("apply route table", "version", t.Version, "error", err)
		return
	}
	f.applied, f.failed, f.err = t.Version, 0, ""
	if f.OnApplied != nil {
		f.OnApplied(t.Version)
	}
}

func (f *Follower) applyEntry(ctx context.Context, e gantry.RouteEntry, cur gantry.RouteStatus, served bool, prev gantry.RouteEntry, known bool) error {
	name := e.Route.Name
	// switched: this apply moves the active set, which ends the local
	// split (or, at a canary's final switch, turns it into its tail).
	switched := false
	if len(e.Active) > 0 && (!served || !known || !reflect.DeepEqual(prev.Route, e.Route) || !sameAddrs(addrsOf(cur.Active), e.Active)) {
		if _, err := f.Local.Deploy(ctx, e.Route, e.Active); err != nil {
			return err
		}
		switched = served && !sameAddrs(addrsOf(cur.Active), e.Active)
		served = true
	}
	if !served {
		return nil
	}
	if err := f.applyCanary(ctx, e, prev, known, switched); err != nil {
		return err
	}
	if !sameAddrs(addrsOf(cur.Preview), e.Preview) {
		if err := f.Local.SetPreview(ctx, name, e.Preview); err != nil {
			return err
		}
	}
	if cur.Paused != e.Paused || cur.WritesOnly != e.WritesOnly {
		var err error
		if e.Paused {
			err = f.Local.Pause(ctx, name, e.WritesOnly)
		} else {
			err = f.Local.Resume(ctx, name)
		}
		if err != nil {
			return err
		}
	}
	if cur.Maintenance != e.Maintenance || (e.Maintenance && prev.MaintenanceMessage != e.MaintenanceMessage) {
		return f.Local.Maintenance(ctx, name, e.Maintenance, e.MaintenanceMessage)
	}
	return nil
}

func addrsOf(ts []gantry.TargetStatus) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Addr
	}
	return out
}

// Report returns what this router says of itself.
func (f *Follower) Report(ctx context.Context) *gantry.RouterReport {
	routes, _ := f.Local.Status(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.canaryFigures(ctx, routes, f.last)
	return &gantry.RouterReport{Name: f.Name, URL: f.URL, Applied: f.applied, Failed: f.failed, Error: f.err, Routes: routes}
}

func (f *Follower) report(ctx context.Context) {
	f.reportMu.Lock()
	defer f.reportMu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := f.Source.ReportRouter(rctx, f.Report(rctx))
	switch {
	case ctx.Err() != nil:
	case err != nil && err.Error() != f.reportErr:
		f.reportErr = err.Error()
		f.logger().Warn("report to the control plane failed; a switch waits for this router's reports", "error", tokenHint(err))
	case err != nil:
		f.logger().Debug("report to the control plane", "error", err)
	case f.reportErr != "":
		f.reportErr = ""
		f.logger().Info("reporting to the control plane again")
	}
}

func (f *Follower) heartbeat(ctx context.Context) {
	every := f.Heartbeat
	if every <= 0 {
		every = DefaultHeartbeat
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		f.report(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *Follower) logger() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// tokenHint adds to a refusal by the control plane what a router (not a
// CLI user, whom the API's own words address) does about it.
func tokenHint(err error) error {
	switch gantry.ErrorCode(err) {
	case gantry.EUNAUTHORIZED, gantry.EFORBIDDEN:
		return fmt.Errorf("%w (a router passes its token with --follow-token-file; see docs/topology.md)", err)
	}
	return err
}
