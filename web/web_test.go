package web_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/delivery"
	"github.com/gantry-dev/gantry/sqlite"
	"github.com/gantry-dev/gantry/web"
)

// journalDeploys records a deployment in the store, journals two steps
// and, when hold is set, waits on it before the last one, so that a test
// can watch a deployment that is still running.
type journalDeploys struct {
	db   *sqlite.DB
	hold chan struct{}
	fail string // when set, the switch step fails with this
}

func (j *journalDeploys) run(ctx context.Context, kind, app, env, actor string, p gantry.Progress) (*gantry.Deployment, error) {
	d := &gantry.Deployment{App: app, Env: env, Kind: kind, ReleaseID: "shop-1.1.0", Version: "1.1.0", Actor: actor, State: gantry.DeploymentRunning}
	if err := j.db.CreateDeployment(ctx, d); err != nil {
		return nil, err
	}
	st := &gantry.Step{Name: "start", State: gantry.StepDone, Detail: "2 instances on green"}
	if err := j.db.AppendStep(ctx, d.ID, st); err != nil {
		return nil, err
	}
	p(gantry.Event{DeploymentID: d.ID, Step: "start", State: gantry.StepDone})
	if j.hold != nil {
		<-j.hold
	}
	sw := &gantry.Step{Name: "switch", State: gantry.StepDone, Detail: "router switched"}
	if j.fail != "" {
		sw.Name, sw.State, sw.Detail = "health", gantry.StepFailed, j.fail
	}
	if err := j.db.AppendStep(ctx, d.ID, sw); err != nil {
		return nil, err
	}
	if j.fail != "" {
		d.State, d.Error, d.FinishedAt = gantry.DeploymentFailed, j.fail, time.Now()
		if err := j.db.UpdateDeployment(ctx, d); err != nil {
			return nil, err
		}
		return d, gantry.Errorf(gantry.EFAILED, "%s", j.fail)
	}
	d.State, d.FinishedAt = gantry.DeploymentSucceeded, time.Now()
	return d, j.db.UpdateDeployment(ctx, d)
}

func (j *journalDeploys) Deploy(ctx context.Context, req gantry.DeployRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return j.run(ctx, gantry.KindDeploy, req.App, req.Env, req.Actor, p)
}
func (j *journalDeploys) Promote(ctx context.Context, req gantry.PromoteRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return j.run(ctx, gantry.KindPromote, req.App, req.To, req.Actor, p)
}
func (j *journalDeploys) Rollback(ctx context.Context, req gantry.RollbackRequest, p gantry.Progress) (*gantry.Deployment, error) {
	return j.run(ctx, gantry.KindRollback, req.App, req.Env, req.Actor, p)
}
func (j *journalDeploys) Logs(ctx context.Context, app, env, service string, tail int, follow bool, w io.Writer) error {
	return nil
}

type fixture struct {
	db       *sqlite.DB
	deploys  *journalDeploys
	canaries *canaryStub
	url      string
	dash     *web.Dashboard
	api      *api.Server
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, deploys: &journalDeploys{db: db}, canaries: &canaryStub{}}
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		rel := &gantry.Release{ID: "shop-" + v, App: "shop", Version: v, Commit: strings.Repeat("c", 40), Manifest: []byte("app: shop"),
			ManifestDigest: "sha256:" + strings.Repeat("d", 64), Artifacts: map[string]gantry.Artifact{"web": {Kind: gantry.ArtifactTarball, Digest: "sha256:" + strings.Repeat("a", 64)}}}
		if v == "1.1.0" {
			a := rel.Artifacts["web"]
			a.Version = "4.2.0" // the service's own version
			rel.Artifacts["web"] = a
		}
		if err := db.CreateRelease(ctx, rel); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []struct{ name, from string }{{"test", ""}, {"prod", "test"}} {
		env := &gantry.Environment{App: "shop", Name: e.name, Spec: gantry.EnvironmentSpec{PromoteFrom: e.from, Secrets: []string{"DATABASE_URL"}}, Active: gantry.SlotBlue}
		if e.name == "prod" {
			env.Spec.Freeze = []gantry.FreezeWindow{{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Reason: "year-end freeze"}}
		}
		*env.Slot(gantry.SlotBlue) = gantry.Slot{Name: gantry.SlotBlue, State: gantry.SlotActive, ReleaseID: "shop-1.1.0", Version: "1.1.0", Since: time.Now(),
			Instances: []gantry.Instance{{Service: "web", Addr: "127.0.0.1:1"}}}
		*env.Slot(gantry.SlotGreen) = gantry.Slot{Name: gantry.SlotGreen, State: gantry.SlotStandby, ReleaseID: "shop-1.0.0", Version: "1.0.0"}
		if err := db.PutEnvironment(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	apiSrv := &api.Server{Store: db, Deploys: f.deploys, Tokens: db, Audit: db, Canaries: f.canaries, Delivery: &delivery.Service{Store: db}}
	f.api = apiSrv
	f.dash = &web.Dashboard{API: apiSrv.Handler(), Tokens: db, PollInterval: 20 * time.Millisecond}
	mux := http.NewServeMux()
	mux.Handle("/v1/", apiSrv.Handler())
	mux.Handle("/", f.dash.Handler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	t.Cleanup(f.dash.Close)
	f.url = hs.URL
	return f
}

func (f *fixture) token(t *testing.T, name, role string, envs ...string) string {
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

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%.600s", page)
	}
	return m[1]
}

// signIn signs b in with secret and returns the session's CSRF token.
func (b *browser) signIn(secret string) string {
	b.t.Helper()
	_, page, _ := b.get("/signin")
	status, body, h := b.post("/signin", url.Values{"csrf": {csrfOf(b.t, page)}, "token": {secret}, "next": {"/"}})
	if status != http.StatusSeeOther || h.Get("Location") != "/" {
		b.t.Fatalf("sign in: %d %s\n%.400s", status, h.Get("Location"), body)
	}
	_, page, _ = b.get("/")
	return csrfOf(b.t, page)
}

func TestSignInSessionsAndCookies(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f.url)
	if status, _, h := b.get("/"); status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/signin") {
		t.Fatalf("GET / signed out: %d to %q, want a redirect to /signin", status, h.Get("Location"))
	}
	b.get("/signin") // sets the sign-in cookie, which the forged field does not match
	if status, body, _ := b.post("/signin", url.Values{"csrf": {"forged"}, "token": {"x"}}); status != http.StatusForbidden {
		t.Errorf("sign-in with a forged CSRF token: %d, want 403\n%.300s", status, body)
	}
	_, page, _ := b.get("/signin")
	if status, body, _ := b.post("/signin", url.Values{"csrf": {csrfOf(t, page)}, "token": {"gty_nope"}}); status != http.StatusUnauthorized || !strings.Contains(body, "Unknown token") {
		t.Errorf("sign-in with an unknown token: %d, want 401 Unknown token", status)
	}
	secret := f.token(t, "ann", gantry.RoleViewer)
	_, page, _ = b.get("/signin")
	_, _, h := b.post("/signin", url.Values{"csrf": {csrfOf(t, page)}, "token": {secret}})
	var session *http.Cookie
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "gantry_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Secure {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure on plain HTTP", session)
	}
	status, body, hdr := b.get("/")
	if status != 200 || !strings.Contains(body, "ann") || !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("overview after sign-in: %d, CSP %q", status, hdr.Get("Content-Security-Policy"))
	}
	// Revoking the token ends the session at the next request.
	if err := f.db.RevokeToken(context.Background(), "ann"); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := b.get("/"); status != http.StatusSeeOther {
		t.Errorf("GET / after revocation: %d, want a redirect to sign in", status)
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	f := newFixture(t)
	hs := httptest.NewTLSServer(f.dash.Handler())
	t.Cleanup(hs.Close)
	c := hs.Client()
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	resp, err := c.Get(hs.URL + "/signin")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %s over TLS: %+v, want Secure, HttpOnly, SameSite=Strict", ck.Name, ck)
		}
	}
	if len(resp.Cookies()) == 0 {
		t.Error("sign-in page set no cookie")
	}
}

func TestPagesRender(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t, f.url)
	b.signIn(f.token(t, "ann", gantry.RoleViewer))
	for _, tt := range []struct{ path, want string }{
		{"/", `id="env-prod"`},
		{"/", "1.1.0"},
		{"/", "aaaaaaaaaaaa"},
		{"/", "Promote from test"},
		{"/", `title="year-end freeze">frozen`},
		{"/apps/shop/releases", "shop-1.0.0"},
		{"/apps/shop/releases/shop-1.0.0", "standby"},
		{"/apps/shop/releases/shop-1.0.0", "<td>web</td><td>1.0.0</td>"},
		{"/apps/shop/releases/shop-1.1.0", "<td>web</td><td>4.2.0</td>"},
		{"/", "4.2.0 · <code"},
		{"/apps/shop/diff?a=test&b=prod", "Same release on both"},
		{"/apps/shop/diff?a=test&b=prod", "DATABASE_URL"},
		{"/apps/shop/deployments", "No deployments yet"},
		{"/apps/shop/metrics", "nothing in this period"},
		{"/apps/shop/metrics?days=7&env=test", "last 7 days · test"},
	} {
		status, body, _ := b.get(tt.path)
		if status != 200 || !strings.Contains(body, tt.want) {
			t.Errorf("GET %s: %d, want 200 containing %q\n%.500s", tt.path, status, tt.want, body)
		}
	}
	for path, want := range map[string]int{"/apps/shop/metrics?env=nope": http.StatusNotFound, "/apps/shop/metrics?days=many": http.StatusBadRequest} {
		if status, _, _ := b.get(path); status != want {
			t.Errorf("GET %s: %d, want %d", path, status, want)
		}
	}
	if status, _, _ := b.get("/apps/nope/releases/x"); status != http.StatusNotFound {
		t.Errorf("GET a missing release: %d, want 404", status)
	}
}

// TestActionsFollowAPIPermissions: the dashboard's actions are the API's,
// with the signed-in token's grant, CSRF-checked and audited.
func TestActionsFollowAPIPermissions(t *testing.T) {
	f := newFixture(t)
	viewer := newBrowser(t, f.url)
	csrf := viewer.signIn(f.token(t, "ann", gantry.RoleViewer))
	status, body, _ := viewer.post("/apps/shop/actions/rollback", url.Values{"csrf": {csrf}, "env": {"prod"}})
	if status != http.StatusForbidden || !strings.Contains(body, "token ann (viewer) lacks deploy on environment prod") {
		t.Errorf("rollback as a viewer: %d, want 403 naming the permission\n%.600s", status, body)
	}
	ci := newBrowser(t, f.url)
	csrf = ci.signIn(f.token(t, "ci", gantry.RoleDeployer, "test"))
	if status, _, _ := ci.post("/apps/shop/actions/deploy", url.Values{"env": {"test"}, "release": {"1.1.0"}}); status != http.StatusForbidden {
		t.Errorf("deploy without the CSRF token: %d, want 403", status)
	}
	status, _, h := ci.post("/apps/shop/actions/deploy", url.Values{"csrf": {csrf}, "env": {"test"}, "release": {"1.1.0"}})
	if status != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/apps/shop/deployments/") {
		t.Fatalf("deploy to test as ci: %d to %q, want a redirect to the deployment", status, h.Get("Location"))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		status, body, _ := ci.get(h.Get("Location"))
		if status == 200 && strings.Contains(body, "router switched") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment page: %d, the deployment did not finish within 10s\n%.600s", status, body)
		}
	}
	status, _, _ = ci.post("/apps/shop/actions/promote", url.Values{"csrf": {csrf}, "from": {"test"}, "to": {"prod"}})
	if status != http.StatusForbidden {
		t.Errorf("promote to prod as ci (deployer for test): %d, want 403", status)
	}
	status, _, _ = ci.post("/apps/shop/actions/lock", url.Values{"csrf": {csrf}, "env": {"test"}, "reason": {"tests"}})
	if status != http.StatusSeeOther {
		t.Errorf("lock test as ci: %d, want a redirect", status)
	}
	// The deploy is audited when it ends, which may come after the rest.
	var got []string
	for deadline := time.Now().Add(10 * time.Second); ; {
		es, err := f.db.ListAudit(context.Background(), gantry.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range es {
			got = append(got, e.Actor+" "+e.Env+" "+e.Operation[strings.LastIndex(e.Operation, "/")+1:]+" "+e.Result)
		}
		if len(got) >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	slices.Sort(got)
	if want := "ann prod rollback denied|ci prod promote denied|ci test deploy ok|ci test lock ok"; strings.Join(got, "|") != want {
		t.Errorf("audit trail: %q, want %q", strings.Join(got, "|"), want)
	}
}

// TestLiveSteps reads the server-sent events of a running deployment: the
// steps as they are journaled, then "done".
func TestLiveSteps(t *testing.T) {
	f := newFixture(t)
	f.deploys.hold = make(chan struct{})
	b := newBrowser(t, f.url)
	csrf := b.signIn(f.token(t, "root", gantry.RoleAdmin))
	status, _, h := b.post("/apps/shop/actions/deploy", url.Values{"csrf": {csrf}, "env": {"test"}, "release": {"1.1.0"}})
	if status != http.StatusSeeOther {
		t.Fatalf("deploy: %d", status)
	}
	loc := h.Get("Location")
	_, page, _ := b.get(loc)
	if !strings.Contains(page, `data-src="`+loc+`/events"`) || !strings.Contains(page, `http-equiv="refresh"`) {
		t.Errorf("running deployment page lacks the live stream or the no-script refresh:\n%.800s", page)
	}
	resp, err := b.c.Get(f.url + loc + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("events Content-Type %q", ct)
	}
	events := make(chan string, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev strings.Builder
		for sc.Scan() {
			if sc.Text() == "" {
				events <- ev.String()
				ev.Reset()
				continue
			}
			ev.WriteString(sc.Text() + "\n")
		}
	}()
	next := func(want string) string {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok || !strings.Contains(ev, want) {
				t.Fatalf("event %q, want one containing %q", ev, want)
			}
			return ev
		case <-time.After(20 * time.Second):
			t.Fatalf("no event containing %q within 20s", want)
		}
		return ""
	}
	if ev := next("event: steps"); !strings.Contains(ev, "2 instances on green") || strings.Contains(ev, "router switched") {
		t.Errorf("first steps event: %q, want the start step only", ev)
	}
	close(f.deploys.hold)
	next("router switched")
	next("event: done")
}

// TestFailedDeploymentShowsWhy: a failed deployment's page says which step
// failed and why.
func TestFailedDeploymentShowsWhy(t *testing.T) {
	f := newFixture(t)
	f.deploys.fail = "instance web-1 did not become healthy: GET /up: connection refused; last output: panic: no DATABASE_URL"
	b := newBrowser(t, f.url)
	csrf := b.signIn(f.token(t, "root", gantry.RoleAdmin))
	status, body, h := b.post("/apps/shop/actions/deploy", url.Values{"csrf": {csrf}, "env": {"test"}, "release": {"1.1.0"}})
	if status != http.StatusSeeOther {
		t.Fatalf("deploy: %d\n%.500s", status, body)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, page, _ := b.get(h.Get("Location"))
		if strings.Contains(page, `id="failure"`) {
			if !strings.Contains(page, "panic: no DATABASE_URL") || !strings.Contains(page, `class="step failed"`) {
				t.Errorf("failed deployment page lacks the reason or the failed step:\n%.2000s", page)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the failure did not show within 10s:\n%.1500s", page)
		}
	}
}
