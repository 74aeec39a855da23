package api_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/sqlite"
)

// scriptedDeploys is a stand-in DeployService whose answers the test sets:
// the real orchestrator is exercised end to end in cmd/gantry.
type scriptedDeploys struct {
	events []gantry.Event
	d      *gantry.Deployment
	err    error
	got    gantry.DeployRequest
}

func (s *scriptedDeploys) Deploy(ctx context.Context, req gantry.DeployRequest, p gantry.Progress) (*gantry.Deployment, error) {
	s.got = req
	for _, ev := range s.events {
		p(ev)
	}
	return s.d, s.err
}
func (s *scriptedDeploys) Promote(ctx context.Context, req gantry.PromoteRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return s.d, s.err
}
func (s *scriptedDeploys) Rollback(ctx context.Context, req gantry.RollbackRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return s.d, s.err
}
func (s *scriptedDeploys) Logs(ctx context.Context, app, env, service string, tail int, follow bool, w io.Writer) error {
	return gantry.Errorf(gantry.ENOTFOUND, "environment %q runs nothing", env)
}

func newServer(t *testing.T, deploys *scriptedDeploys) (*api.Client, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv := httptest.NewServer((&api.Server{Store: db, Deploys: deploys, Tokens: db, Audit: db}).Handler())
	t.Cleanup(srv.Close)
	return api.NewClient(srv.URL, mustToken(t, db, "alice", gantry.RoleAdmin)), db
}

// mustToken creates a token in db and returns its secret.
func mustToken(t *testing.T, db gantry.TokenStore, name, role string, envs ...string) string {
	t.Helper()
	secret, err := gantry.NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateToken(context.Background(), &gantry.Token{Name: name, Role: role, Envs: envs, Hash: gantry.HashToken(secret)}); err != nil {
		t.Fatal(err)
	}
	return secret
}

// post sends body as c's token holder.
func post(t *testing.T, c *api.Client, path, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	return http.DefaultClient.Do(req)
}

func TestErrorsKeepTheirCode(t *testing.T) {
	c, _ := newServer(t, &scriptedDeploys{})
	ctx := context.Background()
	if _, err := c.CreateApp(ctx, "Bad Name", "/repo"); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("bad app name: %v, want invalid", err)
	}
	if _, err := c.CreateApp(ctx, "shop", "/repo"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApp(ctx, "shop", "/repo"); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Errorf("duplicate app: %v, want conflict", err)
	}
	if _, err := c.FindRelease(ctx, "shop", "9.9.9"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("missing release: %v, want not found", err)
	}
	if err := c.Logs(ctx, "shop", "test", "", 10, false, io.Discard); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("logs of an empty environment: %v, want not found", err)
	}
	if _, err := c.Lock(ctx, "shop", "test", "", ""); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("lock without reason: %v, want invalid", err)
	}
}

func TestStrictRequestBodies(t *testing.T) {
	c, _ := newServer(t, &scriptedDeploys{})
	for _, body := range []string{`{"name":"a","repo":"/r","extra":1}`, `{"name":`, `{"name":"a","repo":"/r"} {}`, strings.Repeat(" ", 2<<20) + "{}"} {
		resp, err := post(t, c, "/v1/apps", body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"invalid"`) {
			t.Errorf("body %.40q: %s %s, want 400 invalid", body, resp.Status, b)
		}
	}
}

func TestStreamedDeploy(t *testing.T) {
	d := &scriptedDeploys{
		events: []gantry.Event{{Step: "start", State: gantry.StepStarted, Message: "slot blue"}, {Step: "start", State: gantry.StepDone}},
		d:      &gantry.Deployment{ID: 7, State: gantry.DeploymentFailed, Error: "health"},
		err:    gantry.Errorf(gantry.EFAILED, "instance web-1 did not become healthy"),
	}
	c, _ := newServer(t, d)
	var seen []string
	got, err := c.Deploy(context.Background(), gantry.DeployRequest{App: "shop", Env: "test", Release: "1.0.0", Actor: "mallory"}, func(ev gantry.Event) {
		seen = append(seen, ev.Step+":"+ev.State)
	})
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(gantry.ErrorMessage(err), "web-1") {
		t.Errorf("err = %v, want the failure with its code", err)
	}
	if got == nil || got.ID != 7 {
		t.Errorf("deployment = %+v, want #7 even though it failed", got)
	}
	if strings.Join(seen, ",") != "start:started,start:done" {
		t.Errorf("events = %v", seen)
	}
	// The actor comes from the client's identity, not from the body.
	if d.got.Actor != "alice" || d.got.App != "shop" || d.got.Env != "test" {
		t.Errorf("request reached the service as %+v", d.got)
	}
}

func TestEarlyRefusalKeepsStatus(t *testing.T) {
	d := &scriptedDeploys{err: gantry.Errorf(gantry.ECONFLICT, `environment "test" is locked by bob`)}
	c, _ := newServer(t, d)
	resp, err := post(t, c, "/v1/apps/shop/environments/test/deploy", `{"release":"1.0.0"}`)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("status %s, want 409 for a refusal before any progress", resp.Status)
	}
	_, err = c.Deploy(context.Background(), gantry.DeployRequest{App: "shop", Env: "test", Release: "1.0.0"}, nil)
	if gantry.ErrorCode(err) != gantry.ECONFLICT || !strings.Contains(gantry.ErrorMessage(err), "bob") {
		t.Errorf("client error %v, want conflict naming bob", err)
	}
	if gantry.ExitCode(err) != 3 {
		t.Errorf("exit code %d, want 3", gantry.ExitCode(err))
	}
}
