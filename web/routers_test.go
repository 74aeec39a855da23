package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// leaderStub is a server of a control plane on PostgreSQL as the API sees
// it: the lease it last saw, and whether it holds it.
type leaderStub struct {
	lease   *gantry.Lease
	leading bool
}

func (l *leaderStub) Leading() bool          { return l.leading }
func (l *leaderStub) Current() *gantry.Lease { return l.lease }
func (l *leaderStub) NotLeaderError() error {
	return gantry.Errorf(gantry.EUNAVAILABLE, "%s leads", l.lease.Holder)
}

// TestRoutersPage: the page says which server leads, its address, fencing
// token and when its lease runs out; and for each router that follows the
// control plane, the version it applied, whether it is behind or failed
// to apply one (and why), when it was last heard from and what it serves.
func TestRoutersPage(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f.url)
	b.signIn(f.token(t, "vic", gantry.RoleViewer))

	_, page, _ := b.get("/routers")
	for _, want := range []string{"only one on its store", "No router follows this control plane", `href="/routers" class="on"`} {
		if !strings.Contains(page, want) {
			t.Errorf("routers page on one SQLite server lacks %q:\n%.2000s", want, page)
		}
	}

	ctx := context.Background()
	f.api.Leader = &leaderStub{lease: &gantry.Lease{Holder: "db-1/4242/ab12", Addr: "http://10.0.0.11:7878", Epoch: 7, Expires: time.Now().Add(2 * time.Second)}}
	route := gantry.Route{Name: "shop/prod", Hosts: []string{"shop.example"}}
	for range 3 {
		if err := f.db.PutRoutes(ctx, &gantry.RouteTable{Routes: []gantry.RouteEntry{{Route: route, Active: []string{"10.0.0.30:20001"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	serves := []gantry.RouteStatus{{Route: route, Active: []gantry.TargetStatus{{Addr: "10.0.0.30:20001", Healthy: true}}}}
	for _, r := range []*gantry.RouterReport{
		{Name: "edge-1", URL: "http://10.0.0.21:8080", Applied: 3, Routes: serves},
		{Name: "edge-2", URL: "http://10.0.0.22:8080", Applied: 1, Routes: serves},
		{Name: "edge-3", URL: "http://10.0.0.23:8080", Applied: 2, Failed: 3, Error: "target 10.0.0.30:20001 is unhealthy from here"},
	} {
		if err := f.db.PutRouterReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	status, page, _ := b.get("/routers")
	if status != http.StatusOK {
		t.Fatalf("GET /routers: %d\n%.1000s", status, page)
	}
	for _, want := range []string{
		"db-1/4242/ab12", "http://10.0.0.11:7878", "epoch 7", "expires in", "route table version 3",
		`id="router-edge-1" data-state="up-to-date"`, `id="router-edge-2" data-state="behind"`, "behind by 2",
		`id="router-edge-3" data-state="failed"`, "failed version 3", "unhealthy from here",
		"http://10.0.0.21:8080", "shop/prod", "10.0.0.30:20001",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("routers page lacks %q:\n%.3000s", want, page)
		}
	}
	if strings.Contains(page, "this server</span>") {
		t.Errorf("a server that does not lead is shown as the leader")
	}
}
