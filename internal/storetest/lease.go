package storetest

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

var leaseTests = []test{
	{"TakeRenewRefuse", testLeaseTakeRenewRefuse},
	{"ExpiryFencesTheDeposed", testLeaseExpiryFences},
	{"Release", testLeaseRelease},
	{"RouteTable", testRouteTable},
	{"RouterReports", testRouterReports},
}

// expire lets a lease of ttl run out on either clock a store may judge it
// by: the fixture's (SQLite) or the database's (PostgreSQL).
func (f *fixture) expire(ttl time.Duration) {
	f.clock.Advance(ttl + time.Millisecond)
	time.Sleep(ttl + 20*time.Millisecond)
}

func testLeaseTakeRenewRefuse(t *testing.T, f *fixture) {
	_, err := f.s.FindLease(f.ctx)
	wantCode(t, "FindLease before any", err, gantry.ENOTFOUND)
	a, err := f.s.AcquireLease(f.ctx, "server-a", "http://a", time.Minute)
	mustOK(t, "AcquireLease a", err)
	if a.Holder != "server-a" || a.Addr != "http://a" || a.Epoch != 1 {
		t.Errorf("first lease: got %+v, want server-a at http://a, epoch 1", a)
	}
	again, err := f.s.AcquireLease(f.ctx, "server-a", "http://a", time.Minute)
	mustOK(t, "renew a", err)
	if again.Epoch != 1 {
		t.Errorf("renewed lease: got epoch %d, want 1 (a renewal keeps the token)", again.Epoch)
	}
	cur, err := f.s.AcquireLease(f.ctx, "server-b", "http://b", time.Minute)
	wantCode(t, "AcquireLease b while a holds it", err, gantry.ECONFLICT)
	if err == nil || !strings.Contains(err.Error(), "server-a") {
		t.Errorf("refusal: got %v, want it to name server-a", err)
	}
	if cur == nil || cur.Holder != "server-a" {
		t.Errorf("refusal: got lease %+v, want server-a's", cur)
	}
	found, err := f.s.FindLease(f.ctx)
	mustOK(t, "FindLease", err)
	if found.Holder != "server-a" || found.Epoch != 1 {
		t.Errorf("FindLease: got %+v, want server-a, epoch 1", found)
	}
}

func testLeaseExpiryFences(t *testing.T, f *fixture) {
	f.mustCreateApp("shop")
	d := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
	const ttl = 300 * time.Millisecond
	a, err := f.s.AcquireLease(f.ctx, "server-a", "http://a", ttl)
	mustOK(t, "AcquireLease a", err)
	fencedA := gantry.WithFence(f.ctx, a.Epoch)
	mustOK(t, "AppendStep by the leader", f.s.AppendStep(fencedA, d.ID, &gantry.Step{Name: "start", State: gantry.StepStarted}))

	f.expire(ttl)
	b, err := f.s.AcquireLease(f.ctx, "server-b", "http://b", time.Minute)
	mustOK(t, "AcquireLease b after a's expired", err)
	if b.Epoch != a.Epoch+1 {
		t.Errorf("taken over: got epoch %d, want %d", b.Epoch, a.Epoch+1)
	}
	_, err = f.s.AcquireLease(f.ctx, "server-a", "http://a", ttl)
	wantCode(t, "deposed a renews", err, gantry.ECONFLICT)

	s := &gantry.Step{Name: "switch", State: gantry.StepStarted}
	err = f.s.AppendStep(fencedA, d.ID, s)
	wantCode(t, "AppendStep by the deposed leader", err, gantry.ECONFLICT)
	if err == nil || !strings.Contains(err.Error(), "fenced") {
		t.Errorf("deposed write: got %v, want a fenced refusal", err)
	}
	d.State = gantry.DeploymentSucceeded
	wantCode(t, "UpdateDeployment by the deposed leader", f.s.UpdateDeployment(fencedA, d), gantry.ECONFLICT)
	wantCode(t, "PutRoutes by the deposed leader", f.s.PutRoutes(fencedA, &gantry.RouteTable{}), gantry.ECONFLICT)

	got, err := f.s.FindDeployment(f.ctx, d.ID)
	mustOK(t, "FindDeployment", err)
	if len(got.Steps) != 1 || got.State != gantry.DeploymentRunning {
		t.Errorf("after refused writes: got %d steps, state %s; want 1 step, running", len(got.Steps), got.State)
	}
	mustOK(t, "AppendStep by the new leader", f.s.AppendStep(gantry.WithFence(f.ctx, b.Epoch), d.ID, &gantry.Step{Name: "recover", State: gantry.StepStarted}))
	mustOK(t, "an unfenced write", f.s.PutRouterReport(f.ctx, &gantry.RouterReport{Name: "r1"}))
}

func testLeaseRelease(t *testing.T, f *fixture) {
	a, err := f.s.AcquireLease(f.ctx, "server-a", "http://a", time.Hour)
	mustOK(t, "AcquireLease a", err)
	mustOK(t, "ReleaseLease a", f.s.ReleaseLease(f.ctx, "server-a"))
	f.clock.Advance(time.Millisecond)
	b, err := f.s.AcquireLease(f.ctx, "server-b", "http://b", time.Hour)
	mustOK(t, "AcquireLease b after a released", err)
	if b.Epoch != a.Epoch+1 || b.Holder != "server-b" {
		t.Errorf("after release: got %+v, want server-b at epoch %d", b, a.Epoch+1)
	}
}

func testRouteTable(t *testing.T, f *fixture) {
	empty, err := f.s.FindRoutes(f.ctx)
	mustOK(t, "FindRoutes before any", err)
	if empty.Version != 0 || len(empty.Routes) != 0 {
		t.Errorf("empty table: got %+v, want version 0, no routes", empty)
	}
	l, err := f.s.AcquireLease(f.ctx, "server-a", "http://a", time.Hour)
	mustOK(t, "AcquireLease", err)
	ctx := gantry.WithFence(f.ctx, l.Epoch)
	t1 := &gantry.RouteTable{Routes: []gantry.RouteEntry{{Route: gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"}}, Active: []string{"127.0.0.1:9001"}}}}
	mustOK(t, "PutRoutes", f.s.PutRoutes(ctx, t1))
	if t1.Version != 1 {
		t.Errorf("first PutRoutes: got version %d, want 1", t1.Version)
	}
	got, err := f.s.WaitRoutes(f.ctx, 0)
	mustOK(t, "WaitRoutes after 0", err)
	sameJSON(t, "route table", got, t1)

	type result struct {
		t   *gantry.RouteTable
		err error
	}
	done := make(chan result, 1)
	go func() {
		rt, err := f.s.WaitRoutes(f.ctx, 1)
		done <- result{rt, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("WaitRoutes after 1 returned before version 2 existed: %+v, %v", r.t, r.err)
	case <-time.After(100 * time.Millisecond):
	}
	t2 := &gantry.RouteTable{Routes: []gantry.RouteEntry{{Route: gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"}}, Active: []string{"127.0.0.1:9002"}, Previous: []string{"127.0.0.1:9001"}}}}
	mustOK(t, "PutRoutes 2", f.s.PutRoutes(ctx, t2))
	select {
	case r := <-done:
		mustOK(t, "WaitRoutes after 1", r.err)
		sameJSON(t, "route table woken", r.t, t2)
	case <-time.After(10 * time.Second):
		t.Fatal("WaitRoutes after 1 was not woken by version 2")
	}
}

func testRouterReports(t *testing.T, f *fixture) {
	rs, err := f.s.ListRouterReports(f.ctx)
	mustOK(t, "ListRouterReports before any", err)
	if len(rs) != 0 {
		t.Errorf("reports before any: got %d", len(rs))
	}
	mustOK(t, "report r2", f.s.PutRouterReport(f.ctx, &gantry.RouterReport{Name: "r2", URL: "http://r2", Applied: 3}))
	f.clock.Advance(time.Second)
	mustOK(t, "report r1", f.s.PutRouterReport(f.ctx, &gantry.RouterReport{Name: "r1", URL: "http://r1", Applied: 2, Failed: 3, Error: "unhealthy"}))
	mustOK(t, "report r2 again", f.s.PutRouterReport(f.ctx, &gantry.RouterReport{Name: "r2", URL: "http://r2", Applied: 4,
		Routes: []gantry.RouteStatus{{Route: gantry.Route{Name: "shop/test"}, Active: []gantry.TargetStatus{{Addr: "127.0.0.1:9001", Healthy: true, Requests: 7}}}}}))
	rs, err = f.s.ListRouterReports(f.ctx)
	mustOK(t, "ListRouterReports", err)
	if len(rs) != 2 || rs[0].Name != "r1" || rs[1].Name != "r2" {
		t.Fatalf("reports: got %+v, want r1 and r2", rs)
	}
	if len(rs[1].Routes) != 1 || len(rs[1].Routes[0].Active) != 1 || rs[1].Routes[0].Active[0].Requests != 7 {
		t.Errorf("r2's routes: got %+v, want shop/test with 7 requests on 127.0.0.1:9001", rs[1].Routes)
	}
	if rs[0].Failed != 3 || rs[0].Error != "unhealthy" || rs[1].Applied != 4 || rs[1].Seen.IsZero() {
		t.Errorf("reports: got %+v and %+v", *rs[0], *rs[1])
	}
	mustOK(t, "DeleteRouterReport r1", f.s.DeleteRouterReport(f.ctx, "r1"))
	wantCode(t, "DeleteRouterReport r1 again", f.s.DeleteRouterReport(f.ctx, "r1"), gantry.ENOTFOUND)
	if rs, _ := f.s.ListRouterReports(f.ctx); len(rs) != 1 || rs[0].Name != "r2" {
		t.Errorf("after forgetting r1: got %+v, want r2 alone", rs)
	}
	wantCode(t, "report without a name", f.s.PutRouterReport(f.ctx, &gantry.RouterReport{}), gantry.EINVALID)
}
