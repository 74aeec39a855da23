package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/sqlite"
)

// nopDeploys answers every operation with an empty success.
type nopDeploys struct{}

func (nopDeploys) Deploy(ctx context.Context, req gantry.DeployRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 1, App: req.App, Env: req.Env, ReleaseID: "shop-1.0.0", Actor: req.Actor}, nil
}
func (nopDeploys) Promote(ctx context.Context, req gantry.PromoteRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 2}, nil
}
func (nopDeploys) Rollback(ctx context.Context, req gantry.RollbackRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return &gantry.Deployment{ID: 3}, nil
}
func (nopDeploys) Logs(ctx context.Context, app, env, service string, tail int, follow bool, w io.Writer) error {
	return nil
}
func (nopDeploys) BuildRelease(ctx context.Context, req gantry.BuildRequest, p gantry.Progress) (*gantry.Release, error) {
	return &gantry.Release{ID: "shop-1.0.0"}, nil
}

type accessFixture struct {
	srv *Server
	db  *sqlite.DB
	url string
}

func newAccessFixture(t *testing.T) *accessFixture {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &Server{Store: db, Deploys: nopDeploys{}, Releases: nopDeploys{}, Tokens: db, Audit: db}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return &accessFixture{srv: s, db: db, url: hs.URL}
}

func (f *accessFixture) token(t *testing.T, name, role string, envs ...string) string {
	t.Helper()
	secret, err := gantry.NewTokenSecret()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.CreateToken(context.Background(), &gantry.Token{Name: name, Role: role, Envs: envs, Hash: gantry.HashToken(secret)}); err != nil {
		t.Fatal(err)
	}
	return secret
}

// call sends method path with an empty JSON object and returns the status
// and the error body (if any).
func (f *accessFixture) call(t *testing.T, method, path, token string, header ...string) (int, ErrorBody) {
	t.Helper()
	var body io.Reader
	if method != http.MethodGet && method != http.MethodDelete {
		body = strings.NewReader(`{}`)
	}
	req, err := http.NewRequest(method, f.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb ErrorBody
	_ = json.Unmarshal(b, &eb)
	return resp.StatusCode, eb
}

// routePath fills a route pattern's wildcards.
func routePath(pattern, env string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	r := strings.NewReplacer("{app}", "shop", "{env}", env, "{id}", "1", "{name}", "nobody")
	return method, r.Replace(path)
}

// rolePerms is the specification of the roles, written out here rather
// than taken from gantry.RolePermissions so that a change there fails.
var rolePerms = map[string][]string{
	"viewer":   {"read"},
	"deployer": {"read", "build", "deploy"},
	"approver": {"read", "approve"},
	"admin":    {"read", "build", "deploy", "approve", "admin"},
}

// TestPermissionMatrix sends every route to every role, with a grant for
// every environment and one for test only, on test and on prod.
func TestPermissionMatrix(t *testing.T) {
	f := newAccessFixture(t)
	if err := f.db.CreateApp(context.Background(), &gantry.App{Name: "shop", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	type grant struct {
		role   string
		scoped bool
		secret string
	}
	var grants []grant
	for role := range rolePerms {
		grants = append(grants, grant{role, false, f.token(t, role+"-all", role)}, grant{role, true, f.token(t, role+"-test", role, "test")})
	}
	checked := 0
	for _, rt := range f.srv.routes() {
		if rt.perm == "" {
			continue
		}
		for _, env := range []string{"test", "prod"} {
			method, path := routePath(rt.pattern, env)
			if !strings.Contains(rt.pattern, "{env}") && env == "prod" {
				continue
			}
			for _, g := range grants {
				want := slices.Contains(rolePerms[g.role], rt.perm)
				envScoped := rt.perm == "deploy" || rt.perm == "approve" || rt.perm == "admin"
				if g.scoped && envScoped {
					want = want && strings.Contains(rt.pattern, "{env}") && env == "test"
				}
				status, eb := f.call(t, method, path, g.secret)
				denied := status == http.StatusForbidden && eb.Code == gantry.EFORBIDDEN
				name := g.role
				if g.scoped {
					name += " for test"
				}
				switch {
				case status == http.StatusUnauthorized:
					t.Errorf("%s %s as %s: 401, want the token to be known", method, path, name)
				case want && denied:
					t.Errorf("%s %s as %s: denied (%s), want allowed", method, path, name, eb.Error)
				case !want && !denied:
					t.Errorf("%s %s as %s: status %d, want 403 forbidden", method, path, name, status)
				case !want && !strings.Contains(eb.Error, "lacks "+rt.perm):
					t.Errorf("%s %s as %s: message %q does not name the missing permission %s", method, path, name, eb.Error, rt.perm)
				}
				checked++
			}
		}
	}
	if checked < 100 {
		t.Errorf("checked %d combinations, want the whole matrix", checked)
	}
}

func TestDenialsAndUnknownTokens(t *testing.T) {
	f := newAccessFixture(t)
	if err := f.db.CreateApp(context.Background(), &gantry.App{Name: "shop", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	ci := f.token(t, "ci-test", "deployer", "test")
	status, eb := f.call(t, "POST", "/v1/apps/shop/environments/prod/deploy", ci)
	if want := "token ci-test (deployer for test) lacks deploy on environment prod"; status != 403 || eb.Error != want {
		t.Errorf("deploy to prod as ci-test: %d %q, want 403 %q", status, eb.Error, want)
	}
	for _, tok := range []string{"", "gty_unknown"} {
		if status, eb := f.call(t, "GET", "/v1/apps", tok); status != 401 || eb.Code != gantry.EUNAUTHORIZED {
			t.Errorf("GET /v1/apps with token %q: %d %s, want 401 unauthorized", tok, status, eb.Code)
		}
	}
	// A revoked token is unknown at once.
	admin := f.token(t, "root", "admin")
	if err := f.db.RevokeToken(context.Background(), "root"); err != nil {
		t.Fatal(err)
	}
	if status, _ := f.call(t, "GET", "/v1/apps", admin); status != 401 {
		t.Errorf("revoked token: status %d, want 401", status)
	}
	// The actor is the token's name whatever the client says it is.
	if status, _ := f.call(t, "POST", "/v1/apps/shop/environments/test/deploy", ci, "Gantry-Actor", "mallory"); status != 200 {
		t.Fatalf("deploy to test as ci-test: status %d", status)
	}
	es, err := f.db.ListAudit(context.Background(), gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Actor+" "+e.Operation+" "+e.Env+" "+e.Release+" "+e.Result+" "+e.Code)
	}
	want := []string{
		"ci-test POST /v1/apps/{app}/environments/{env}/deploy prod  denied forbidden",
		"unauthenticated GET /v1/apps   denied unauthorized",
		"unauthenticated GET /v1/apps   denied unauthorized",
		"unauthenticated GET /v1/apps   denied unauthorized",
		"ci-test POST /v1/apps/{app}/environments/{env}/deploy test shop-1.0.0 ok ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLocalIdentityIsTrusted: an identity put in the context by the unix
// socket's listener or the dashboard needs no token.
func TestLocalIdentityIsTrusted(t *testing.T) {
	f := newAccessFixture(t)
	req := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(`{"name":"ci","role":"deployer","envs":["test"]}`))
	req = req.WithContext(gantry.WithIdentity(req.Context(), &gantry.Identity{Name: "ops", Role: "admin", Local: true}))
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	var ct CreatedToken
	if err := json.Unmarshal(rec.Body.Bytes(), &ct); rec.Code != http.StatusCreated || err != nil || !strings.HasPrefix(ct.Secret, "gty_") {
		t.Fatalf("create token as the local user: %d %s", rec.Code, rec.Body)
	}
	stored, err := f.db.FindTokenByHash(context.Background(), gantry.HashToken(ct.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if stored.CreatedBy != "ops" || strings.Contains(rec.Body.String(), stored.Hash) {
		t.Errorf("created token %s: want created by ops, and no hash in the response", rec.Body)
	}
	if status, _ := f.call(t, "GET", "/v1/whoami", ct.Secret); status != 200 {
		t.Errorf("the new token: status %d, want 200", status)
	}
}

// TestAuditRecordsRequestedRelease: a refused operation is recorded
// against the release it asked for; a promotion's "to" (an environment) and
// a secret's value are not taken for one.
func TestAuditRecordsRequestedRelease(t *testing.T) {
	f := newAccessFixture(t)
	if err := f.db.CreateApp(context.Background(), &gantry.App{Name: "shop", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	viewer := f.token(t, "ann", "viewer")
	for _, c := range []struct{ path, body string }{
		{"/v1/apps/shop/environments/prod/deploy", `{"release":"2.0.0"}`},
		{"/v1/apps/shop/environments/prod/rollback", `{"to":"1.0.0"}`},
		{"/v1/apps/shop/environments/prod/promote", `{"from":"test","to":"prod"}`},
		{"/v1/apps/shop/environments/prod/secrets/KEY", `{"value":"v4lue-never-audited"}`},
	} {
		method := http.MethodPost
		if strings.Contains(c.path, "/secrets/") {
			method = http.MethodPut
		}
		req, _ := http.NewRequest(method, f.url+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+viewer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	es, err := f.db.ListAudit(context.Background(), gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "v4lue") {
			t.Errorf("audit entry holds the secret's value: %s", b)
		}
		got = append(got, e.Release)
	}
	if strings.Join(got, ",") != "2.0.0,1.0.0,," {
		t.Errorf("releases recorded: %q, want 2.0.0,1.0.0,,", strings.Join(got, ","))
	}
}
