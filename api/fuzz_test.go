package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/sqlite"
)

// The fuzz tests feed arbitrary request bodies to the API: through the
// decode function every handler uses, and through the real handler chain
// (access control, audit, decode, validation, streaming) with services that
// accept anything and echo it back, so that what the handlers do with a
// body they accepted is exercised too. Invariant 8: bad input gets a clear
// error coded "invalid", never a panic or an internal error.

// bodyRoutes are the routes that read a JSON body, with a body each one
// accepts, as seeds.
var bodyRoutes = []struct {
	method, path, seed string
}{
	{"POST", "/v1/apps/shop/environments/test/deploy", `{"release":"shop-1.0.0"}`},
	{"POST", "/v1/apps/shop/environments/prod/promote", `{"from":"test","break_glass":"incident 12"}`},
	{"POST", "/v1/apps/shop/environments/test/rollback", `{"to":"shop-0.9.0"}`},
	{"POST", "/v1/apps/shop/environments/prod/clone", `{"dst":"testnew","with_data":true}`},
	{"POST", "/v1/apps/shop/environments/testnew/rename", `{"new":"test","displace_to":"testold"}`},
	{"POST", "/v1/apps/shop/environments/prod/approvals", `{"release":"shop-1.0.0","comment":"ok"}`},
	{"POST", "/v1/tokens", `{"name":"ci","role":"deployer","envs":["test"]}`},
	{"POST", "/v1/apps/shop/environments/test/lock", `{"reason":"freeze","ttl":"2h"}`},
	{"POST", "/v1/apps", `{"name":"web","repo":"/src/web"}`},
	{"POST", "/v1/apps/shop/releases", `{"ref":"main","version":"1.0.0"}`},
	{"POST", "/v1/apps/shop/releases/import", `{"version":"1.0.0","commit":"abc","images":{"web":"r/web@sha256:00"}}`},
	{"POST", "/v1/apps/shop/environments/test/rollout", `{"release":"shop-1.0.0","pause_after":1,"only":"web"}`},
	{"POST", "/v1/apps/shop/environments/test/continue", `{}`},
	{"POST", "/v1/apps/shop/environments/test/db/snapshots", `{"reason":"before"}`},
	{"PUT", "/v1/apps/shop/environments/test/secrets/DB_URL", `{"value":"postgres://x"}`},
}

// echoServices stand in for the orchestrator: they accept every request
// and return it in their result, so that fuzzed strings reach the
// response encoder.
type echoServices struct{ nopDeploys }

func (echoServices) Deploy(ctx context.Context, req gantry.DeployRequest, p gantry.Progress) (*gantry.Deployment, error) {
	p(gantry.Event{Step: "start", Message: req.Release})
	return &gantry.Deployment{ID: 1, App: req.App, Env: req.Env, ReleaseID: req.Release, Actor: req.Actor}, nil
}
func (echoServices) Promote(ctx context.Context, req gantry.PromoteRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 2, App: req.App, Env: req.To, ReleaseID: req.From}, nil
}
func (echoServices) Rollback(ctx context.Context, req gantry.RollbackRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 3, App: req.App, Env: req.Env, ReleaseID: req.To}, gantry.Errorf(gantry.ECONFLICT, "no warm slot for %q", req.To)
}
func (echoServices) Clone(ctx context.Context, req gantry.CloneRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 4, App: req.App, Env: req.Dst}, nil
}
func (echoServices) Rename(ctx context.Context, req gantry.RenameRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 5, App: req.App, Env: req.New}, nil
}
func (echoServices) DeleteEnvironment(ctx context.Context, req gantry.DeleteEnvironmentRequest) error {
	return nil
}
func (echoServices) Approve(ctx context.Context, req gantry.ApproveRequest) (*gantry.Approval, error) {
	return &gantry.Approval{App: req.App, Env: req.Env, ReleaseID: req.Release, Approver: req.Actor, Comment: req.Comment}, nil
}
func (echoServices) DeployOrdered(ctx context.Context, req gantry.DeployRequest, pauseAfter *int, only string, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 6, App: req.App, Env: req.Env, ReleaseID: req.Release + only}, nil
}
func (echoServices) Continue(ctx context.Context, req gantry.ContinueRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 7, App: req.App, Env: req.Env}, nil
}
func (echoServices) ImportRelease(ctx context.Context, req gantry.ImportRequest) (*gantry.Release, error) {
	return &gantry.Release{ID: req.App + "-" + req.Version, App: req.App, Version: req.Version, Commit: req.Commit}, nil
}
func (echoServices) DatabaseStatus(ctx context.Context, app, env string) (*gantry.DatabaseStatus, error) {
	return &gantry.DatabaseStatus{}, nil
}
func (echoServices) DatabaseContract(ctx context.Context, app, env string, force bool) (*gantry.MigrationRecord, error) {
	return &gantry.MigrationRecord{}, nil
}
func (echoServices) DatabaseRollback(ctx context.Context, app, env string, force bool) (*gantry.MigrationRecord, error) {
	return &gantry.MigrationRecord{}, nil
}
func (echoServices) Snapshots(ctx context.Context, app, env string) ([]*gantry.Snapshot, error) {
	return nil, nil
}
func (echoServices) Snapshot(ctx context.Context, app, env, reason string) (*gantry.Snapshot, error) {
	return &gantry.Snapshot{Name: reason}, nil
}
func (echoServices) Restore(ctx context.Context, app, env, name string) (*gantry.MigrationRecord, error) {
	return &gantry.MigrationRecord{}, nil
}
func (echoServices) SetSecret(ctx context.Context, app, env, name, value string) error { return nil }
func (echoServices) ListSecrets(ctx context.Context, app, env string) ([]string, error) {
	return nil, nil
}
func (echoServices) UnsetSecret(ctx context.Context, app, env, name string) error { return nil }

// discardAudit records nothing: the audit middleware still reads every
// body, which is what the fuzz test is after, without a write per input.
type discardAudit struct{}

func (discardAudit) AppendAudit(ctx context.Context, e *gantry.AuditEntry) error { return nil }
func (discardAudit) ListAudit(ctx context.Context, f gantry.AuditFilter) ([]*gantry.AuditEntry, error) {
	return nil, nil
}
func (discardAudit) AuditHead(ctx context.Context) (int64, string, error) { return 0, "", nil }

func newFuzzHandler(f *testing.F) http.Handler {
	f.Helper()
	dir, err := os.MkdirTemp("", "gantry-fuzz-api-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop", Repo: "/src/shop"}); err != nil {
		f.Fatal(err)
	}
	for _, env := range []string{"test", "prod", "testnew"} {
		if err := db.PutEnvironment(ctx, &gantry.Environment{App: "shop", Name: env}); err != nil {
			f.Fatal(err)
		}
	}
	svc := echoServices{}
	s := &Server{Store: db, Deploys: svc, Releases: svc, Importer: svc, Rollouts: svc, Workflows: svc,
		Databases: svc, Tokens: db, Audit: discardAudit{}, Secrets: svc}
	return s.Handler()
}

// FuzzAPIBodies sends a fuzzed body to one of the body-reading routes of
// the real handler, as the local admin (so that every route gets past
// access control to its decoding).
func FuzzAPIBodies(f *testing.F) {
	h := newFuzzHandler(f)
	for i, rt := range bodyRoutes {
		f.Add(uint8(i), []byte(rt.seed))
	}
	for _, b := range []string{``, `null`, `[]`, `{}]`, `{}}`, `{"release":1}`, `{"pause_after":-1}`, `{"ttl":"-5m","reason":"x"}`,
		`{"envs":null,"name":"","role":"root"}`, `{"new":"prod","displace_to":"prod"}`, "{\"release\":\"\xff\"}", `{"x":1}`} {
		f.Add(uint8(0), []byte(b))
	}
	admin := LocalIdentity(os.Getuid())
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := bodyRoutes[int(route)%len(bodyRoutes)]
		req := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		req = req.WithContext(gantry.WithIdentity(req.Context(), admin))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var eb ErrorBody
		_ = json.Unmarshal(w.Body.Bytes(), &eb)
		if w.Code >= 500 || eb.Code == gantry.EINTERNAL {
			t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, body, w.Code, w.Body)
		}
		if !json.Valid(body) && (w.Code != http.StatusBadRequest || eb.Code != gantry.EINVALID) {
			t.Fatalf("%s %s with a body that is not JSON %q: %d %s; want 400 invalid", rt.method, rt.path, body, w.Code, w.Body)
		}
		if w.Code < 300 && !json.Valid(bytes.TrimSpace(firstLine(w.Body.Bytes()))) {
			t.Fatalf("%s %s with %q answered %d with a body that is not JSON: %q", rt.method, rt.path, body, w.Code, w.Body)
		}
	})
}

func firstLine(b []byte) []byte {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if strings.TrimSpace(string(line)) == "{" { // indented JSON
		return b
	}
	return line
}

// FuzzDecode decodes fuzzed bodies into every request type through the
// handlers' decode: no panic, and every error is coded "invalid".
func FuzzDecode(f *testing.F) {
	for _, rt := range bodyRoutes {
		f.Add([]byte(rt.seed))
	}
	f.Add([]byte(`{}]`))
	f.Add([]byte(`{"pause_after":1e400}`))
	types := []func() any{
		func() any { return new(gantry.DeployRequest) }, func() any { return new(gantry.PromoteRequest) },
		func() any { return new(gantry.RollbackRequest) }, func() any { return new(CloneRequest) },
		func() any { return new(RenameRequest) }, func() any { return new(ApproveBody) },
		func() any { return new(CreateTokenRequest) }, func() any { return new(LockRequest) },
		func() any { return new(CreateAppRequest) }, func() any { return new(gantry.BuildRequest) },
		func() any { return new(ImportRequest) }, func() any { return new(RolloutRequest) },
		func() any { return new(ContinueRequest) }, func() any { return new(SnapshotRequest) },
		func() any { return new(SetSecretRequest) },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, mk := range types {
			v := mk()
			r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
			err := decode(r, v)
			if err != nil && gantry.ErrorCode(err) != gantry.EINVALID {
				t.Fatalf("decode %q into %T: %v (code %s), want invalid", body, v, err, gantry.ErrorCode(err))
			}
			if err == nil && !json.Valid(body) {
				t.Fatalf("decode %q into %T accepted a body that is not JSON", body, v)
			}
		}
	})
}
