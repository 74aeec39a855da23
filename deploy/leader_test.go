package deploy_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/deploy"
	"github.com/gantry-dev/gantry/internal/memdriver"
)

// TestLeaderRunsOperationsOnlyWithTheLease: of two orchestrators on one
// store, only the one whose server holds the lease runs a deploy (the
// other's refusal names the leader); once another takes the lease, the
// deposed one's next deploy is refused by the store itself, before it
// changes anything, even though it still believes it leads.
func TestLeaderRunsOperationsOnlyWithTheLease(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})

	led := make(chan int64, 2)
	onLead := func(ctx context.Context) {
		token, _ := gantry.FenceFrom(ctx)
		led <- token
	}
	a := &deploy.Leader{Store: h.Store, Holder: "server-a", Addr: "http://a", TTL: time.Hour, OnLead: onLead}
	b := &deploy.Leader{Store: h.Store, Holder: "server-b", Addr: "http://b", TTL: time.Hour, OnLead: onLead}
	oa, ob := h.NewOrchestrator(), h.NewOrchestrator()
	oa.Leader, ob.Leader = a, b

	a.Try(h.Ctx)
	b.Try(h.Ctx)
	if !a.Leading() || b.Leading() {
		t.Fatalf("leading: a %v, b %v; want a alone", a.Leading(), b.Leading())
	}
	if got := <-led; got != 1 {
		t.Errorf("a leads with token %d, want 1", got)
	}
	_, err := ob.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v1.ID, Actor: "dev"}, nil)
	if gantry.ErrorCode(err) != gantry.EUNAVAILABLE || !strings.Contains(err.Error(), "server-a at http://a") {
		t.Fatalf("deploy on the server that does not lead: got %v, want EUNAVAILABLE naming server-a at http://a", err)
	}
	h.O = oa
	h.MustDeploy(t, "shop", "test", v1)
	served := h.Serving(t, "shop", "test")

	// a is deposed (its lease ends without a noticing) and b takes over.
	if err := h.Store.ReleaseLease(h.Ctx, "server-a"); err != nil {
		t.Fatal(err)
	}
	b.Try(h.Ctx)
	if !b.Leading() {
		t.Fatal("b did not take the free lease")
	}
	if got := <-led; got != 2 {
		t.Errorf("b leads with token %d, want 2", got)
	}
	if !a.Leading() {
		t.Fatal("a noticed before its next renewal; the test wants a deposed leader that does not know it")
	}
	_, err = oa.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil)
	if gantry.ErrorCode(err) != gantry.ECONFLICT || !strings.Contains(err.Error(), "fenced") {
		t.Fatalf("deploy by the deposed leader: got %v, want the store's fenced refusal", err)
	}
	if got := h.Serving(t, "shop", "test"); strings.Join(got, ",") != strings.Join(served, ",") {
		t.Errorf("after the deposed leader's attempt the router serves %v, want %v as before", got, served)
	}
	if ds, _ := h.Store.ListDeployments(h.Ctx, gantry.DeploymentFilter{App: "shop", Env: "test"}); len(ds) != 1 {
		t.Errorf("deployments: got %d, want the first alone (the deposed leader recorded nothing)", len(ds))
	}
	a.Try(h.Ctx)
	if a.Leading() {
		t.Error("a still leads after its renewal was refused")
	}
}

// TestDeposedLeaderStopsNothing: a leader deposed in the middle of a
// rollout (it does not know yet) sees its candidate fail; its cleanup must
// not stop instances, since the new leader now owns the environment (a
// revived leader stopped the instances the new leader served). What the
// deposed leader started is the new leader's to stop, at its recovery.
func TestDeposedLeaderStopsNothing(t *testing.T) {
	h := NewHarness(t, Options{})
	app := Simple("shop")
	v1 := h.MustRelease(t, app, Rel{Version: "1.0.0"})
	v2 := h.MustRelease(t, app, Rel{Version: "1.0.1"})
	a := &deploy.Leader{Store: h.Store, Holder: "server-a", Addr: "http://a", TTL: time.Hour}
	b := &deploy.Leader{Store: h.Store, Holder: "server-b", Addr: "http://b", TTL: time.Hour}
	oa := h.NewOrchestrator()
	oa.Leader = a
	a.Try(h.Ctx)
	h.O = oa
	h.MustDeploy(t, "shop", "test", v1)

	// 1.0.1 starts, never becomes healthy and exits; a is deposed once its
	// instances are started, before the rollout fails.
	h.Driver.SetRelease(v2.ID, memdriver.Knobs{NeverHealthy: true, ExitAfter: 20 * time.Millisecond})
	h.Driver.ResetCalls()
	var deposed atomic.Bool
	h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if len(h.Driver.Calls("start")) > 0 && !deposed.Load() {
			if err := h.Store.ReleaseLease(h.Ctx, "server-a"); err != nil {
				t.Error(err)
			}
			b.Try(h.Ctx)
			h.Driver.ResetCalls()
			deposed.Store(true)
		}
	})
	if _, err := oa.Deploy(h.Ctx, gantry.DeployRequest{App: "shop", Env: "test", Release: v2.ID, Actor: "dev"}, nil); err == nil {
		t.Fatal("the deploy of a release that never becomes healthy succeeded")
	}
	h.SetOnStep(nil)
	if !deposed.Load() {
		t.Fatal("the deploy ended before a was deposed; the test wants a deposed leader mid-rollout")
	}
	if stops := h.Driver.Calls("stop"); len(stops) > 0 {
		t.Errorf("the deposed leader stopped instances after it lost the lease: %v", stops)
	}
}
