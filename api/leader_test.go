package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/sqlite"
)

// notLeading is a LeaderService of a server that does not lead: the
// lease-taking itself (deploy.Leader) runs end to end in cmd/gantry.
type notLeading struct{ lease *gantry.Lease }

func (n notLeading) Leading() bool          { return false }
func (n notLeading) Current() *gantry.Lease { return n.lease }
func (n notLeading) NotLeaderError() error {
	if n.lease == nil {
		return gantry.Errorf(gantry.EUNAVAILABLE, "no server holds the lease yet; retry in a few seconds")
	}
	return gantry.Errorf(gantry.EUNAVAILABLE, "this server does not run deployments: the leader is %s at %s", n.lease.Holder, n.lease.Addr)
}

// TestDeploysGoToTheLeader: a deploy sent to a server that does not lead
// runs on the leader, with the caller's token and its progress streamed
// back; reads are answered where they arrive; a request forwarded once is
// not forwarded again, and without a leader the answer is 503.
func TestDeploysGoToTheLeader(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	token := mustToken(t, db, "alice", gantry.RoleAdmin)
	onLeader := &scriptedDeploys{d: &gantry.Deployment{ID: 7, State: gantry.DeploymentSucceeded},
		events: []gantry.Event{{Step: "switch", State: gantry.StepDone, Message: "on the leader"}}}
	leader := httptest.NewServer((&api.Server{Store: db, Deploys: onLeader, Tokens: db, Audit: db}).Handler())
	t.Cleanup(leader.Close)
	onFollower := &scriptedDeploys{}
	follower := httptest.NewServer((&api.Server{Store: db, Deploys: onFollower, Tokens: db, Audit: db,
		Leader: notLeading{&gantry.Lease{Holder: "server-a", Addr: leader.URL, Epoch: 3}}}).Handler())
	t.Cleanup(follower.Close)

	c := api.NewClient(follower.URL, token)
	var events []string
	d, err := c.Deploy(context.Background(), gantry.DeployRequest{App: "shop", Env: "test", Release: "r1"}, func(e gantry.Event) { events = append(events, e.Message) })
	if err != nil || d.ID != 7 {
		t.Fatalf("deploy through the follower: got %+v, %v; want #7 from the leader", d, err)
	}
	if onLeader.got.Env != "test" || onFollower.got.Env != "" {
		t.Errorf("deploy ran on the leader %v, on the follower %v; want the leader only", onLeader.got.Env != "", onFollower.got.Env != "")
	}
	if len(events) != 1 || events[0] != "on the leader" {
		t.Errorf("progress through the follower: got %q", events)
	}
	if _, err := c.ListEnvironments(context.Background(), "shop"); gantry.ErrorCode(err) == gantry.EUNAVAILABLE {
		t.Errorf("a read on the follower: %v", err)
	}

	req, _ := http.NewRequest(http.MethodPost, follower.URL+"/v1/apps/shop/environments/test/deploy", strings.NewReader(`{"release":"r1"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Gantry-Forwarded-By", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a request forwarded once more: status %d, want 503", resp.StatusCode)
	}

	none := httptest.NewServer((&api.Server{Store: db, Deploys: onFollower, Tokens: db, Audit: db, Leader: notLeading{}}).Handler())
	t.Cleanup(none.Close)
	_, err = api.NewClient(none.URL, token).Deploy(context.Background(), gantry.DeployRequest{App: "shop", Env: "test", Release: "r1"}, nil)
	if gantry.ErrorCode(err) != gantry.EUNAVAILABLE || !strings.Contains(err.Error(), "no server holds the lease") {
		t.Errorf("deploy with no leader: got %v, want EUNAVAILABLE, retry", err)
	}
}

// canaryOn is a CanaryService that knows of a canary (rep) or of none.
type canaryOn struct{ rep *gantry.CanaryReport }

func (c canaryOn) CanaryStatus(ctx context.Context, app, env string) (*gantry.CanaryReport, error) {
	if c.rep == nil {
		return nil, gantry.Errorf(gantry.ENOTFOUND, "no canary runs on %s/%s", app, env)
	}
	return c.rep, nil
}

func (c canaryOn) CanarySteer(ctx context.Context, app, env, actor string, promote bool) (*gantry.CanaryReport, error) {
	return c.CanaryStatus(ctx, app, env)
}

// TestCanaryStatusComesFromTheLeader: a canary runs on the leader, which
// alone has its live figures; `gantry canary status` given another server
// is answered by the leader.
func TestCanaryStatusComesFromTheLeader(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	token := mustToken(t, db, "alice", gantry.RoleAdmin)
	leader := httptest.NewServer((&api.Server{Store: db, Tokens: db, Audit: db, Canaries: canaryOn{&gantry.CanaryReport{App: "shop", Env: "test", DeploymentID: 7, Step: 2}}}).Handler())
	t.Cleanup(leader.Close)
	follower := httptest.NewServer((&api.Server{Store: db, Tokens: db, Audit: db, Canaries: canaryOn{},
		Leader: notLeading{&gantry.Lease{Holder: "server-a", Addr: leader.URL, Epoch: 3}}}).Handler())
	t.Cleanup(follower.Close)
	rep, err := api.NewClient(follower.URL, token).CanaryStatus(context.Background(), "shop", "test")
	if err != nil || rep.DeploymentID != 7 || rep.Step != 2 {
		t.Fatalf("canary status through the follower: got %+v, %v; want the leader's (#7 at step 2)", rep, err)
	}
}
