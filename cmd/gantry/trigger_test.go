package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/forgetest"
)

// headOf returns the commit that ref names in repo.
func headOf(t *testing.T, repo, ref string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", repo, "rev-parse", ref).Output()
	if err != nil {
		t.Fatalf("git rev-parse %s: %v", ref, err)
	}
	return strings.TrimSpace(string(out))
}

// addHook makes a hook through the API as the server's own user, with a
// FakeForge (no forge is reachable here) to receive its commit statuses.
func addHook(t *testing.T, s *Server, forge, role string, envs []string, forgeAPI string) *gantry.AddedHook {
	t.Helper()
	h, err := s.Client.AddHook(context.Background(), "hello", api.AddHookRequest{Forge: forge, Role: role, Envs: envs, APIURL: forgeAPI, APIToken: "forge-token-" + forge})
	if err != nil {
		t.Fatalf("add the %s hook: %v", forge, err)
	}
	return h
}

// deliverOK sends d and wants 202, then waits for the work it started.
func deliverOK(t *testing.T, s *Server, d forgetest.Delivery, wantAction string) gantry.DeliveryResult {
	t.Helper()
	code, body := d.Send(t, s.APIURL+"/v1/hooks/hello/"+strings.Replace(d.Forge, "forgejo", "gitea", 1))
	if code != http.StatusAccepted {
		t.Fatalf("%s %s delivery %s: HTTP %d %s, want 202", d.Forge, d.Event, d.ID, code, body)
	}
	var res gantry.DeliveryResult
	mustJSON(t, body, &res)
	if !strings.Contains(res.Action, wantAction) {
		t.Fatalf("%s %s delivery: action %q, want %q", d.Forge, d.Event, res.Action, wantAction)
	}
	s.Triggers.Wait()
	return res
}

// deliverRefused sends d and wants the status code and an error naming why.
func deliverRefused(t *testing.T, s *Server, d forgetest.Delivery, wantCode int, wantErr string) {
	t.Helper()
	code, body := d.Send(t, s.APIURL+"/v1/hooks/hello/"+strings.Replace(d.Forge, "forgejo", "gitea", 1))
	if code != wantCode || !strings.Contains(body, wantErr) {
		t.Errorf("%s %s delivery %s: HTTP %d %s; want %d and %q", d.Forge, d.Event, d.ID, code, body, wantCode, wantErr)
	}
}

// TestTriggerDeliveries: real HTTP deliveries to a real server, signed as
// GitHub, GitLab and Gitea/Forgejo sign them. A push to releases/* builds
// and deploys test (process runtime) as the hook's own token, and the forge
// hears of it; a push to main only builds. A bad signature, a replayed
// delivery, a delivery too old, and a hook whose token may not deploy
// there are refused.
func TestTriggerDeliveries(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	editManifest(t, repo, "triggers", func(m string) string {
		return m + "triggers:\n  - {on: push, branch: \"releases/*\", do: deploy, env: test}\n  - {on: push, branch: main, do: build}\n"
	})
	git(t, repo, "branch", "releases/1.1")
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	// On the server's unix socket (the server's own directory), the
	// payload URL the CLI prints is the one the server listens on.
	for _, args := range [][]string{{"ci", "github", "hello"}, {"hook", "add", "gitea", "--app", "hello", "--env", "prod"}} {
		out, errs, code := runCLI(t, "unix://"+s.SocketPath, args...)
		if want := s.APIURL + "/v1/hooks/hello/"; code != 0 || !strings.Contains(out, want) {
			t.Errorf("gantry %s on the socket: exit %d, want the payload URL %s… in\n%s%s", strings.Join(args, " "), code, want, out, errs)
		}
	}
	mustCLI(t, s.APIURL, "hook", "remove", "gitea", "--app", "hello")
	forge := forgetest.StartFakeForge(t)
	gh := addHook(t, s, "github", gantry.RoleDeployer, []string{"test"}, forge.URL)
	gl := addHook(t, s, "gitlab", gantry.RoleDeployer, []string{"test"}, forge.URL)
	gt := addHook(t, s, "gitea", gantry.RoleDeployer, []string{"prod"}, forge.URL)
	if gh.Path != "/v1/hooks/hello/github" || len(gh.Secret) != 64 || gh.Token != "hook-github-hello" {
		t.Fatalf("github hook: %+v", gh)
	}

	// GitHub: a push to releases/1.1 builds and deploys test as the hook.
	release := headOf(t, repo, "releases/1.1")
	push := forgetest.Delivery{Forge: "github", Event: "push", ID: "72d3162e-cc78-11e3-81ab-4c9367dc0958", Secret: gh.Secret,
		Body: forgetest.Payload(t, "github_push", forgetest.Params{Branch: "releases/1.1", Commit: release})}
	res := deliverOK(t, s, push, "deploy it to test")
	if res.Actor != "hook-github-hello" || res.Commit != release {
		t.Errorf("delivery result %+v", res)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	d := lastDeployment(t, s, "test")
	if d.Actor != "hook-github-hello" || d.State != gantry.DeploymentSucceeded {
		t.Errorf("test's deployment: actor %q state %s, want hook-github-hello succeeded", d.Actor, d.State)
	}
	st := forge.Wait(t, 10*time.Second, func(s forgetest.Status) bool { return s.Fields["state"] == "success" })
	if st.Path != "/repos/octo-org/hello/statuses/"+release || st.Auth != "Bearer forge-token-github" || st.Fields["context"] != "gantry/deploy-test" ||
		!strings.Contains(st.Fields["target_url"], "test.hello.localhost") {
		t.Errorf("GitHub commit status: %+v", st)
	}

	// The same delivery again is a replay; so is a new id for an event older
	// than the replay window (once its id is forgotten). A wrong signature
	// is refused before anything is read.
	deliverRefused(t, s, push, http.StatusConflict, "received already")
	old := push
	old.ID = "old-delivery"
	old.Body = forgetest.Payload(t, "github_push", forgetest.Params{Branch: "releases/1.1", Commit: release, At: time.Now().Add(-48 * time.Hour)})
	deliverRefused(t, s, old, http.StatusConflict, "older than the 24h0m0s replay window")
	forged := push
	forged.ID, forged.Sign = "forged", "not-the-secret"
	deliverRefused(t, s, forged, http.StatusUnauthorized, "signature does not match")

	// GitLab: a push to main builds a release and deploys nothing.
	commitChange(t, repo, "VERSION", "1.2.0\n", "1.2.0")
	main := headOf(t, repo, "main")
	glPush := forgetest.Delivery{Forge: "gitlab", Event: "Push Hook", ID: "5e8d2f2b-gl-1", Secret: gl.Secret,
		Body: forgetest.Payload(t, "gitlab_push", forgetest.Params{Branch: "main", Commit: main})}
	deliverOK(t, s, glPush, "build "+main[:7])
	rels, err := s.Store.ListReleases(context.Background(), gantry.ReleaseFilter{App: "hello", Commit: main})
	if err != nil || len(rels) != 1 || rels[0].Builder != "hook-gitlab-hello" || rels[0].Version != "1.2.0" {
		t.Errorf("releases of main: %+v, %v; want one 1.2.0 built by hook-gitlab-hello", rels, err)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	forge.Wait(t, 10*time.Second, func(s forgetest.Status) bool {
		return s.Path == "/projects/15/statuses/"+main && s.Auth == "forge-token-gitlab" && s.Fields["name"] == "gantry/build" && s.Fields["state"] == "success"
	})
	deliverRefused(t, s, glPush, http.StatusConflict, "received already")
	badToken := glPush
	badToken.ID, badToken.Sign = "5e8d2f2b-gl-2", "guess"
	deliverRefused(t, s, badToken, http.StatusUnauthorized, "X-Gitlab-Token does not match")

	// Forgejo (the Gitea hook, Forgejo's headers): a push to releases/1.1
	// would deploy test, but this hook's token is limited to prod: refused
	// as a person with that grant would be, and nothing is deployed.
	git(t, repo, "branch", "-f", "releases/1.1", "main")
	fjPush := forgetest.Delivery{Forge: "forgejo", Event: "push", ID: "f0a1-fj-1", Secret: gt.Secret,
		Body: forgetest.Payload(t, "gitea_push", forgetest.Params{Branch: "releases/1.1", Commit: main})}
	deliverRefused(t, s, fjPush, http.StatusForbidden, "hook-gitea-hello (deployer for prod) lacks deploy on environment test")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	fjBad := fjPush
	fjBad.ID, fjBad.Sign = "f0a1-fj-2", "nope"
	deliverRefused(t, s, fjBad, http.StatusUnauthorized, "signature does not match")

	// The hooks are listed without their secrets; a removed hook's token
	// is revoked and its deliveries find no hook.
	out := mustCLI(t, s.APIURL, "hook", "list", "--json")
	if strings.Contains(out, gh.Secret) || !strings.Contains(out, "hook-gitlab-hello") {
		t.Errorf("hook list: %s", out)
	}
	// Each hook's latest deliveries, newest first, with the answer and how
	// the work ended, through the API and on the dashboard's hooks page.
	hooks, err := s.Client.ListHooks(context.Background(), "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hooks {
		if h.Forge != "github" {
			continue
		}
		if h.URL != s.APIURL+"/v1/hooks/hello/github" || len(h.Recent) != 4 || !h.Recent[0].Refused || !strings.Contains(h.Recent[0].Answer, "signature does not match") ||
			h.Recent[3].Delivery != push.ID || h.Recent[3].Refused || h.Recent[3].Outcome != "success" || !strings.Contains(h.Recent[3].Answer, "deploy it to test") {
			t.Errorf("github hook: URL %s, recent deliveries %+v; want the forged one first, refused, and the first push last, deployed", h.URL, h.Recent)
		}
	}
	page := dashboardPage(t, s, testerToken(t, "unix://"+s.SocketPath), nil)
	if code, p := page("/apps/hello/hooks"); code != http.StatusOK || !strings.Contains(p, s.APIURL+"/v1/hooks/hello/github") ||
		!strings.Contains(p, "hook-gitlab-hello") || !strings.Contains(p, "signature does not match") || !strings.Contains(p, `data-outcome="success"`) ||
		strings.Contains(p, gh.Secret) || strings.Contains(p, "forge-token-github") {
		t.Errorf("hooks page: %d, want the payload URL, the deliveries and no secret:\n%.3000s", code, p)
	}
	viewer, err := s.Client.CreateToken(context.Background(), api.CreateTokenRequest{Name: "vic", Role: gantry.RoleViewer})
	if err != nil {
		t.Fatal(err)
	}
	if code, p := dashboardPage(t, s, viewer.Secret, nil)("/apps/hello/hooks"); code != http.StatusForbidden || strings.Contains(p, "payload-url") {
		t.Errorf("hooks page for a viewer: %d, want 403 and no hook\n%.1000s", code, p)
	}

	mustCLI(t, s.APIURL, "hook", "remove", "github")
	next := push
	next.ID = "after-removal"
	deliverRefused(t, s, next, http.StatusNotFound, "no github hook")
	if toks, _ := s.State.ListTokens(context.Background()); strings.Contains(fmt.Sprint(tokenNames(toks)), "hook-github-hello") {
		t.Errorf("the removed hook's token is still there: %v", tokenNames(toks))
	}
	// The audit trail names the hook's token for what its deliveries did.
	entries, err := s.State.ListAudit(context.Background(), gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var byHook int
	for _, e := range entries {
		if e.Actor == "hook-github-hello" && e.Operation == "POST /v1/hooks/{app}/{forge}" {
			byHook++
		}
	}
	if byHook == 0 {
		t.Errorf("no audit entry names hook-github-hello for its delivery")
	}
}

func tokenNames(ts []*gantry.Token) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

// TestPollTrigger: an app added with --poll is watched by listing its
// repository's branches; a branch that moves acts as a push would.
func TestPollTrigger(t *testing.T) {
	needTools(t)
	data, key := t.TempDir(), filepath.Join(t.TempDir(), "secrets.key")
	open := func() *Server {
		s := &Server{DataDir: data, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", PollTick: 50 * time.Millisecond,
			SecretsKey: key, Logger: newLogger(testWriter{t}, "text")}
		if err := s.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		registerSocket(t, s.APIURL, "unix://"+s.SocketPath)
		return s
	}
	s := open()
	t.Cleanup(func() { s.Orchestrator.StopAll(context.Background()); s.Close() })
	repo := helloRepo(t)
	editManifest(t, repo, "triggers", func(m string) string {
		return m + "triggers:\n  - {on: push, branch: \"releases/*\", do: deploy, env: test}\n"
	})
	out := mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo, "--poll", "1s", "--poll-env", "test", "--json")
	var added struct {
		Poll gantry.AddedHook `json:"poll"`
	}
	mustJSON(t, out, &added)
	if added.Poll.Token != "hook-poll-hello" || added.Poll.Poll != time.Second {
		t.Fatalf("app add --poll: %s", out)
	}
	// The first listing is only remembered: the branch appears after it.
	waitUntil(t, time.Minute, func() bool { return s.Triggers.Listed("hello") })
	git(t, repo, "branch", "releases/1.1")
	waitUntil(t, 3*time.Minute, func() bool { // the poller deploys releases/1.1 to test
		env, err := s.Store.FindEnvironment(context.Background(), "hello", "test")
		return err == nil && env.ActiveSlot() != nil
	})
	s.Triggers.Wait()
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	if d := lastDeployment(t, s, "test"); d.Actor != "hook-poll-hello" {
		t.Errorf("deployment actor %q, want hook-poll-hello", d.Actor)
	}

	// A push while the server is down is not lost: the listing the poller
	// acted on last outlives a restart, so the first listing after it
	// finds the branch moved.
	s.Close()
	git(t, repo, "checkout", "-q", "releases/1.1")
	commitChange(t, repo, "VERSION", "1.1.1\n", "1.1.1")
	git(t, repo, "checkout", "-q", "main")
	s = open()
	waitUntil(t, time.Minute, func() bool {
		v, err := getVersion(s.RouterURL, "test.hello.localhost")
		return err == nil && v == "1.1.1"
	})
	s.Triggers.Wait()
	if d := lastDeployment(t, s, "test"); d.Actor != "hook-poll-hello" || d.Version != "1.1.1" {
		t.Errorf("after the restart: %s deployed by %s, want 1.1.1 by hook-poll-hello", d.Version, d.Actor)
	}
}

// TestTriggerThroughGates: a push whose trigger deploys to an environment
// that needs an approval meets the approvals gate as a person's deploy
// would: refused, nothing deployed, and the forge's status says why; once
// someone approves the release, the forge's next delivery deploys it.
func TestTriggerThroughGates(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	editManifest(t, repo, "an approval for test, and a trigger", func(m string) string {
		m = strings.Replace(m, "  test:\n", "  test:\n    approvals: {required: 1}\n", 1)
		return m + "triggers:\n  - {on: push, branch: \"releases/*\", do: deploy, env: test}\n"
	})
	git(t, repo, "branch", "releases/1.1")
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	forge := forgetest.StartFakeForge(t)
	gh := addHook(t, s, "github", gantry.RoleDeployer, nil, forge.URL)
	commit := headOf(t, repo, "releases/1.1")
	push := forgetest.Delivery{Forge: "github", Event: "push", ID: "gates-1", Secret: gh.Secret,
		Body: forgetest.Payload(t, "github_push", forgetest.Params{Branch: "releases/1.1", Commit: commit})}
	deliverOK(t, s, push, "deploy it to test")
	st := forge.Wait(t, 10*time.Second, func(s forgetest.Status) bool { return s.Fields["state"] == "failure" })
	if !strings.Contains(st.Fields["description"], "approvals") || st.Fields["context"] != "gantry/deploy-test" {
		t.Errorf("status of the refused deploy: %+v, want a failure naming the approvals gate", st)
	}
	if ds, err := s.Store.ListDeployments(context.Background(), gantry.DeploymentFilter{App: "hello", Env: "test"}); err != nil || len(ds) != 0 {
		t.Fatalf("deployments of test after the refusal: %d, %v; want none", len(ds), err)
	}
	rels, err := s.Store.ListReleases(context.Background(), gantry.ReleaseFilter{App: "hello", Commit: commit})
	if err != nil || len(rels) != 1 {
		t.Fatalf("releases of %s: %v, %v; want the one the trigger built", commit, rels, err)
	}
	mustCLI(t, s.APIURL, "approve", "test", "--release", rels[0].ID)
	again := push
	again.ID = "gates-2" // the forge's redelivery, or the next push
	deliverOK(t, s, again, "deploy it to test")
	if d := lastDeployment(t, s, "test"); d.Actor != "hook-github-hello" || d.State != gantry.DeploymentSucceeded || d.ReleaseID != rels[0].ID {
		t.Errorf("test's deployment after the approval: %s by %s, state %s; want %s by hook-github-hello, succeeded", d.ReleaseID, d.Actor, d.State, rels[0].ID)
	}
}

// TestTriggerRedeliveryAfterStop: a delivery whose work never finished (the
// server stopped in the middle of its build) is acted on when the forge
// delivers it again, where it used to be refused as a replay and the push
// was lost; while its work runs, and once it finished, the same delivery
// is a replay.
func TestTriggerRedeliveryAfterStop(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	s := openServerAt(t, dir) // closed below, by the test
	repo := helloRepo(t)
	goAhead := filepath.Join(t.TempDir(), "go-ahead")
	editManifest(t, repo, "a build that waits, and a trigger", func(m string) string {
		m = strings.Replace(m, "command: go build", "command: while [ ! -e "+goAhead+" ]; do sleep 0.1; done; go build", 1)
		return m + "triggers:\n  - {on: push, branch: \"releases/*\", do: deploy, env: test}\n"
	})
	git(t, repo, "branch", "releases/1.1")
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	gh := addHook(t, s, "github", gantry.RoleDeployer, nil, "")
	push := forgetest.Delivery{Forge: "github", Event: "push", ID: "redeliver-1", Secret: gh.Secret,
		Body: forgetest.Payload(t, "github_push", forgetest.Params{Branch: "releases/1.1", Commit: headOf(t, repo, "releases/1.1")})}
	if code, body := push.Send(t, s.APIURL+"/v1/hooks/hello/github"); code != http.StatusAccepted {
		t.Fatalf("first delivery: HTTP %d %s", code, body)
	}
	deliverRefused(t, s, push, http.StatusConflict, "received already") // its build still waits
	if err := s.Orchestrator.StopAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close() // the build is cut short: nothing deployed

	s = openServer(t, dir)
	if err := os.WriteFile(goAhead, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deliverOK(t, s, push, "deploy it to test")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	if d := lastDeployment(t, s, "test"); d.Actor != "hook-github-hello" || d.State != gantry.DeploymentSucceeded {
		t.Errorf("test's deployment: %s by %s; want succeeded by hook-github-hello", d.State, d.Actor)
	}
	deliverRefused(t, s, push, http.StatusConflict, "received already")
}

// dashboardPage signs in to s's dashboard with token and returns a getter
// of its pages (status and body); every body is also written to seen, when
// not nil.
func dashboardPage(t *testing.T, s *Server, token string, seen io.Writer) func(path string) (int, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	bc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := bc.Get(s.APIURL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if seen != nil {
			seen.Write(b)
		}
		return resp.StatusCode, string(b)
	}
	_, signin := get("/signin")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(signin)
	if m == nil {
		t.Fatal("no CSRF token on the sign-in page")
	}
	resp, err := bc.PostForm(s.APIURL+"/signin", url.Values{"csrf": {m[1]}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return get
}
