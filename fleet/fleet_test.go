package fleet_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/proxy"
	"github.com/gantry-dev/gantry/sqlite"
)

// storeSource is a Source straight on a store, as a server's API is.
type storeSource struct{ s gantry.Store }

func (s storeSource) WatchRoutes(ctx context.Context, after int64) (*gantry.RouteTable, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	t, err := s.s.WaitRoutes(ctx, after)
	if err != nil && ctx.Err() != nil {
		return s.s.FindRoutes(context.WithoutCancel(ctx))
	}
	return t, err
}

func (s storeSource) ReportRouter(ctx context.Context, r *gantry.RouterReport) error {
	return s.s.PutRouterReport(ctx, r)
}

// backend is an app instance answering its name.
func backend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// follower is a real router following the store; stop cuts it off from
// the control plane (it keeps serving).
type follower struct {
	router *proxy.Router
	stop   context.CancelFunc
}

func follow(t *testing.T, s gantry.Store, name string) *follower {
	t.Helper()
	r := proxy.New(proxy.Config{})
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	f := &fleet.Follower{Name: name, Source: storeSource{s}, Local: r, Heartbeat: 100 * time.Millisecond}
	go func() { defer close(done); f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &follower{router: r, stop: cancel}
}

// get asks a router for the host and returns the body.
func (f *follower) get(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://shop.localhost/", nil)
	f.router.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("router answered %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func setup(t *testing.T) (gantry.Store, *fleet.Router, context.Context, []*follower) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l, err := s.AcquireLease(context.Background(), "test", "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ctx := gantry.WithFence(context.Background(), l.Epoch)
	fs := []*follower{follow(t, s, "r1"), follow(t, s, "r2")}
	// Both routers have registered before the first switch.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs, _ := s.ListRouterReports(ctx)
		if len(rs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the routers did not report")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return s, &fleet.Router{Store: s, Unreachable: time.Second}, ctx, fs
}

var route = gantry.Route{Name: "shop/prod", Hosts: []string{"shop.localhost"}, DeployTimeout: 2 * time.Second, DrainTimeout: time.Second,
	Health: gantry.HealthCheck{Interval: 50 * time.Millisecond, Timeout: time.Second}}

// TestSwitchReturnsOnceEveryRouterServes: Deploy returns only when both
// routers serve the new targets, and a rollback reaches both the same way.
func TestSwitchReturnsOnceEveryRouterServes(t *testing.T) {
	_, r, ctx, fs := setup(t)
	blue, green := backend(t, "blue"), backend(t, "green")
	if _, err := r.Deploy(ctx, route, []string{blue}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Deploy(ctx, route, []string{green})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.From) != 1 || res.From[0] != blue || res.To[0] != green {
		t.Errorf("switch result: got %+v, want from %s to %s", res, blue, green)
	}
	for i, f := range fs {
		if got := f.get(t); got != "green" {
			t.Errorf("router r%d serves %q right after the switch returned, want green", i+1, got)
		}
	}
	if _, err := r.Rollback(ctx, route.Name); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if got := f.get(t); got != "blue" {
			t.Errorf("router r%d serves %q after the rollback, want blue", i+1, got)
		}
	}
	sts, err := r.Status(ctx)
	if err != nil || len(sts) != 1 || sts[0].Active[0].Addr != blue || sts[0].Previous[0] != green {
		t.Errorf("status: got %+v, %v; want blue active, green previous", sts, err)
	}
}

// TestSwitchStopsAtASilentRouter: a router cut off from the control plane
// keeps serving what it had; the switch names it and stops, and the router
// that had applied the change goes back, so both serve the old targets.
func TestSwitchStopsAtASilentRouter(t *testing.T) {
	s, r, ctx, fs := setup(t)
	blue, green := backend(t, "blue"), backend(t, "green")
	if _, err := r.Deploy(ctx, route, []string{blue}); err != nil {
		t.Fatal(err)
	}
	fs[1].stop()
	_, err := r.Deploy(ctx, route, []string{green})
	if gantry.ErrorCode(err) != gantry.EUNAVAILABLE || !strings.Contains(err.Error(), "r2") {
		t.Fatalf("switch with r2 cut off: got %v, want EUNAVAILABLE naming r2", err)
	}
	for i, f := range fs {
		if got := f.get(t); got != "blue" {
			t.Errorf("router r%d serves %q after the stopped switch, want blue", i+1, got)
		}
	}
	tab, _ := s.FindRoutes(ctx)
	if e := tab.Find(route.Name); e == nil || e.Active[0] != blue {
		t.Errorf("route table after the stopped switch: got %+v, want blue active", e)
	}
}

// TestSwitchNamesTheRouterThatCannotApply: targets that no router finds
// healthy fail the switch with the router's own reason.
func TestSwitchNamesTheRouterThatCannotApply(t *testing.T) {
	_, r, ctx, fs := setup(t)
	blue := backend(t, "blue")
	if _, err := r.Deploy(ctx, route, []string{blue}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	_, err = r.Deploy(ctx, route, []string{dead})
	if err == nil || !strings.Contains(err.Error(), "could not apply") || !strings.Contains(err.Error(), dead) {
		t.Fatalf("switch to a dead target: got %v, want a router's refusal naming %s", err, dead)
	}
	for i, f := range fs {
		if got := f.get(t); got != "blue" {
			t.Errorf("router r%d serves %q, want blue", i+1, got)
		}
	}
}

// TestDeposedLeaderCannotChangeRoutes: a route change carrying an old
// fencing token is refused by the store; the routers never see it.
func TestDeposedLeaderCannotChangeRoutes(t *testing.T) {
	s, r, ctx, fs := setup(t)
	blue, green := backend(t, "blue"), backend(t, "green")
	if _, err := r.Deploy(ctx, route, []string{blue}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseLease(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(context.Background(), "other", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	_, err := r.Deploy(ctx, route, []string{green})
	if gantry.ErrorCode(err) != gantry.ECONFLICT || !strings.Contains(err.Error(), "fenced") {
		t.Fatalf("switch by the deposed leader: got %v, want a fenced refusal", err)
	}
	for i, f := range fs {
		if got := f.get(t); got != "blue" {
			t.Errorf("router r%d serves %q, want blue", i+1, got)
		}
	}
}

// TestSwitchWaitsForRoutersAfterAnOutage: routers that could not report
// while the control plane was down (a server restarting) are waited for
// when they come back; a change made at once (the restarted server's
// recovery) does not fail because their last report is old.
func TestSwitchWaitsForRoutersAfterAnOutage(t *testing.T) {
	s, r, ctx, fs := setup(t)
	blue, green := backend(t, "blue"), backend(t, "green")
	if _, err := r.Deploy(ctx, route, []string{blue}); err != nil {
		t.Fatal(err)
	}
	// Both routers lose the control plane for longer than Unreachable,
	// then follow again (here, as new followers under the same names).
	fs[0].stop()
	fs[1].stop()
	time.Sleep(r.Unreachable + 200*time.Millisecond)
	back := make(chan []*follower, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		back <- []*follower{follow(t, s, "r1"), follow(t, s, "r2")}
	}()
	if _, err := r.Deploy(ctx, route, []string{green}); err != nil {
		t.Fatalf("switch as the routers come back: %v", err)
	}
	for i, f := range <-back {
		if got := f.get(t); got != "green" {
			t.Errorf("router r%d serves %q after the switch, want green", i+1, got)
		}
	}
}
