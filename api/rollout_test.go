package api_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/sqlite"
)

// scriptedRollouts records what the rollout endpoints pass on.
type scriptedRollouts struct {
	scriptedDeploys
	pauseAfter *int
	only       string
	app, env   string
	actor      string
	abort      bool
}

func (s *scriptedRollouts) DeployOrdered(ctx context.Context, req gantry.DeployRequest, pauseAfter *int, only string, p gantry.Progress) (*gantry.Deployment, error) {
	s.got, s.pauseAfter, s.only = req, pauseAfter, only
	p(gantry.Event{Step: "start-group", State: gantry.StepDone})
	return &gantry.Deployment{ID: 3, State: gantry.DeploymentPaused}, nil
}

func (s *scriptedRollouts) Continue(ctx context.Context, req gantry.ContinueRequest, p gantry.Progress) (*gantry.Deployment, error) {
	s.app, s.env, s.actor, s.abort = req.App, req.Env, req.Actor, req.Abort
	p(gantry.Event{Step: "continue", State: gantry.StepDone})
	return &gantry.Deployment{ID: 3, State: gantry.DeploymentSucceeded}, nil
}

// newRolloutServer serves the rollout endpoints from rollouts; nil makes a
// server that runs no ordered rollouts.
func newRolloutServer(t *testing.T, rollouts *scriptedRollouts) (*api.Client, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &api.Server{Store: db, Deploys: &scriptedDeploys{}, Tokens: db, Audit: db}
	if rollouts != nil {
		s.Deploys, s.Rollouts = rollouts, rollouts
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return api.NewClient(srv.URL, mustToken(t, db, "alice", gantry.RoleDeployer)), db
}

func TestRolloutEndpoints(t *testing.T) {
	fake := &scriptedRollouts{}
	c, db := newRolloutServer(t, fake)
	ctx := context.Background()
	one := 1
	d, err := c.DeployOrdered(ctx, gantry.DeployRequest{App: "hello", Env: "test", Release: "1.1.0", Actor: "mallory"}, &one, "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != gantry.DeploymentPaused {
		t.Errorf("deployment state = %s, want paused", d.State)
	}
	if fake.pauseAfter == nil || *fake.pauseAfter != 1 || fake.only != "web" {
		t.Errorf("options = %v, %q; want pause after 1, only web", fake.pauseAfter, fake.only)
	}
	if fake.got.App != "hello" || fake.got.Env != "test" || fake.got.Release != "1.1.0" || fake.got.Actor != "alice" {
		t.Errorf("request = %+v, want hello/test 1.1.0 by alice (the token, not the body)", fake.got)
	}
	// Group 0 is a group: it must not read as "no pause".
	zero := 0
	if _, err := c.DeployOrdered(ctx, gantry.DeployRequest{App: "hello", Env: "test", Release: "1.1.0"}, &zero, "", nil); err != nil {
		t.Fatal(err)
	}
	if fake.pauseAfter == nil || *fake.pauseAfter != 0 {
		t.Errorf("pause after group 0 arrived as %v", fake.pauseAfter)
	}
	if _, err := c.Continue(ctx, gantry.ContinueRequest{App: "hello", Env: "test", Actor: "mallory", Abort: true}, nil); err != nil {
		t.Fatal(err)
	}
	if fake.app != "hello" || fake.env != "test" || fake.actor != "alice" || !fake.abort {
		t.Errorf("continue got %s/%s by %s abort=%v, want hello/test by alice with abort", fake.app, fake.env, fake.actor, fake.abort)
	}

	// A viewer may neither deploy nor continue.
	viewer := api.NewClient(c.URL, mustToken(t, db, "vic", gantry.RoleViewer))
	if _, err := viewer.Continue(ctx, gantry.ContinueRequest{App: "hello", Env: "test", Actor: "", Abort: false}, nil); gantry.ErrorCode(err) != gantry.EFORBIDDEN {
		t.Errorf("continue by a viewer: %v, want EFORBIDDEN", err)
	}
}

func TestRolloutNeedsAnOrchestrator(t *testing.T) {
	c, _ := newRolloutServer(t, nil)
	_, err := c.Continue(context.Background(), gantry.ContinueRequest{App: "hello", Env: "test", Actor: "", Abort: false}, nil)
	if gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("continue on a server without ordered rollouts: %v, want EINVALID", err)
	}
}
