package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gantry-dev/gantry"
)

// chromium returns the path of Debian's chromium, skipping the test when
// it is missing (failing it under GANTRY_INTEGRATION=1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("GANTRY_INTEGRATION") == "1" {
		t.Fatal("chromium is required (GANTRY_INTEGRATION=1): apt-get install chromium")
	}
	t.Skip("chromium not installed")
	return ""
}

// browserContext starts a headless Chromium with an empty profile.
func browserContext(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1440, 900),
		// Chromium's start, not what the tests check: on a loaded machine
		// it took longer than chromedp's default 20 s to say where it
		// listens.
		chromedp.WSURLReadTimeout(90 * time.Second),
	}
	// Not t.TempDir: the browser may still write its profile while it
	// exits, and the profile is of no interest after the test.
	profile, err := os.MkdirTemp("", "gantry-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, chromedp.UserDataDir(profile))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		_ = chromedp.Cancel(ctx) // closes the browser and waits for it
		cancel()
		cancelAlloc()
		os.RemoveAll(profile)
	})
	// The first Run starts the browser; it must get the long-lived context,
	// since the browser dies with the context it was started on.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shooter saves a full-page screenshot per page under dir.
type shooter struct {
	t   *testing.T
	ctx context.Context
	dir string
}

// newShooter saves its screenshots in $GANTRY_SCREENSHOT_DIR, or in a
// directory of the test's when that is unset.
func newShooter(t *testing.T, ctx context.Context) *shooter {
	dir := os.Getenv("GANTRY_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	return &shooter{t: t, ctx: ctx, dir: dir}
}

// signIn opens url (the sign-in page, with the next= to land on), signs
// in with secret and waits until sel shows on the page it lands on.
func signIn(t *testing.T, ctx context.Context, url, secret, sel string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(url),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.SendKeys("#token", secret, chromedp.ByQuery),
		chromedp.Click("#signin", chromedp.ByQuery),
		chromedp.WaitVisible(sel, chromedp.ByQuery),
	)
}

func (s *shooter) shot(name string) {
	s.t.Helper()
	var buf []byte
	var err error
	// A page that reloads itself (a deployment that just finished) has no
	// layout for a moment: wait for it to be ready again and retry.
	for try := 0; try < 5; try++ {
		if err = chromedp.Run(s.ctx, chromedp.WaitReady("body", chromedp.ByQuery), chromedp.FullScreenshot(&buf, 100)); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), buf, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// run runs actions with a deadline, failing the test with what was asked.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var loc, body string
		_ = chromedp.Run(ctx, chromedp.Location(&loc), chromedp.Text("body", &body, chromedp.ByQuery))
		t.Fatalf("%s: %v\nat %s:\n%.1000s", what, err, loc, body)
	}
}

// deploymentState is what the deployment page shows: its state, how many
// steps it lists, and whether the page is still the one first loaded.
type deploymentState struct {
	Marked bool   `json:"marked"`
	Steps  int    `json:"steps"`
	State  string `json:"state"`
}

const readDeployment = `(() => { const s = document.getElementById("steps");
  return {marked: window.__gantryMarker === true, steps: document.querySelectorAll("#steps tr.step").length, state: s ? s.dataset.state : ""}; })()`

// confirmAndWatch confirms the action on the current page and follows the
// deployment page until it ends; it reports whether the steps grew on the
// page without a reload, which only the live stream can do.
func confirmAndWatch(t *testing.T, ctx context.Context, sh *shooter, name string) (final deploymentState, live bool) {
	t.Helper()
	run(t, ctx, "confirm "+name, chromedp.Click("#confirm", chromedp.ByQuery), chromedp.WaitVisible("#steps", chromedp.ByQuery))
	var first deploymentState
	run(t, ctx, "mark the page", chromedp.Evaluate(`window.__gantryMarker = true`, nil), chromedp.Evaluate(readDeployment, &first))
	shotLive := false
	deadline := time.Now().Add(90 * time.Second)
	for {
		var st deploymentState
		run(t, ctx, "read the deployment page", chromedp.Evaluate(readDeployment, &st))
		if st.Marked && st.Steps > first.Steps {
			live = true
			if !shotLive && st.State == gantry.DeploymentRunning {
				sh.shot(name + "-live")
				shotLive = true
			}
		}
		// A page that was live reloads itself once the deployment ends;
		// the finished page is the one without the marker.
		if st.State != "" && st.State != gantry.DeploymentRunning && (!st.Marked || first.State != gantry.DeploymentRunning) {
			sh.shot(name)
			return st, live
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not finish within 90s: %+v", name, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDashboardInChromium drives the dashboard in a real headless browser:
// sign in, deploy and watch the steps arrive live, promote, approve, roll
// back; a screenshot of each page is saved (in $GANTRY_SCREENSHOT_DIR when
// set, else the test's temporary directory).
func TestDashboardInChromium(t *testing.T) {
	needTools(t)
	ctx := browserContext(t)
	s := openAccessServer(t, io.Discard)
	repo := helloRepo(t)
	// A verify step that takes a second makes the deployment long enough to
	// be watched.
	manifest, _ := os.ReadFile(filepath.Join(repo, "gantry.yml"))
	commitChange(t, repo, "gantry.yml", string(manifest)+"verify:\n  - command: sleep 1\n", "slow verify")
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, s.APIURL, "promote", "test", "prod")
	var rel gantry.Release
	if err := json.Unmarshal([]byte(mustCLI(t, s.APIURL, "release", "build", "--ref", "main", "--json")), &rel); err != nil {
		t.Fatal(err)
	}
	secret := mustToken(t, s, "release-manager", "admin")

	sh := newShooter(t, ctx)

	run(t, ctx, "sign in",
		chromedp.Navigate(s.APIURL+"/"),
		chromedp.WaitVisible("#token", chromedp.ByQuery),
	)
	sh.shot("01-signin")
	run(t, ctx, "sign in",
		chromedp.SendKeys("#token", secret, chromedp.ByQuery),
		chromedp.Click("#signin", chromedp.ByQuery),
		chromedp.WaitVisible("#env-prod", chromedp.ByQuery),
	)
	var who string
	run(t, ctx, "read the overview", chromedp.Text("header .who span", &who, chromedp.ByQuery))
	if !strings.Contains(who, "release-manager") {
		t.Errorf("signed in as %q, want release-manager", who)
	}
	sh.shot("02-overview")

	run(t, ctx, "open the deploy confirmation",
		chromedp.Navigate(s.APIURL+"/apps/hello/releases/"+rel.ID),
		chromedp.WaitVisible(`a[href*="actions/deploy?env=test"]`, chromedp.ByQuery),
	)
	sh.shot("03-release")
	run(t, ctx, "deploy to test", chromedp.Click(`a[href*="actions/deploy?env=test"]`, chromedp.ByQuery), chromedp.WaitVisible("#confirm", chromedp.ByQuery))
	sh.shot("04-confirm-deploy")
	st, live := confirmAndWatch(t, ctx, sh, "05-deployment")
	if st.State != gantry.DeploymentSucceeded || !live {
		t.Errorf("deploy to test: %+v, live updates seen: %v; want succeeded, watched live", st, live)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", rel.Version)

	if _, ok := any(s.Orchestrator).(gantry.WorkflowService); ok {
		var flash string
		run(t, ctx, "approve for prod",
			chromedp.Navigate(s.APIURL+"/apps/hello/actions/approve?env=prod&release="+rel.ID),
			chromedp.Click("#confirm", chromedp.ByQuery),
			chromedp.WaitVisible(".flash", chromedp.ByQuery),
			chromedp.Text(".flash", &flash, chromedp.ByQuery),
		)
		if !strings.Contains(flash, "Approve") {
			t.Errorf("after approving: %q, want a confirmation", flash)
		}
		var approvals string
		run(t, ctx, "release page after approving",
			chromedp.Navigate(s.APIURL+"/apps/hello/releases/"+rel.ID),
			chromedp.Text("#approvals", &approvals, chromedp.ByQuery),
		)
		if !strings.Contains(approvals, "prod") || !strings.Contains(approvals, "release-manager") {
			t.Errorf("approvals on the release page: %q, want release-manager's for prod", approvals)
		}
		sh.shot("06-approved")
	}

	run(t, ctx, "promote to prod",
		chromedp.Navigate(s.APIURL+"/"),
		chromedp.Click(`#env-prod a[href*="actions/promote"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#confirm", chromedp.ByQuery),
	)
	if st, _ := confirmAndWatch(t, ctx, sh, "07-promote"); st.State != gantry.DeploymentSucceeded {
		t.Errorf("promote: %+v, want succeeded", st)
	}
	wantVersion(t, s.RouterURL, "hello.localhost", rel.Version)

	run(t, ctx, "roll prod back",
		chromedp.Navigate(s.APIURL+"/"),
		chromedp.Click(`#env-prod a[href*="actions/rollback"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#confirm", chromedp.ByQuery),
	)
	sh.shot("08-confirm-rollback")
	if st, _ := confirmAndWatch(t, ctx, sh, "09-rollback"); st.State != gantry.DeploymentSucceeded {
		t.Errorf("rollback: %+v, want succeeded", st)
	}
	wantVersion(t, s.RouterURL, "hello.localhost", "1.0.0")

	run(t, ctx, "diff", chromedp.Navigate(s.APIURL+"/apps/hello/diff?a=test&b=prod"), chromedp.WaitVisible("#verdict", chromedp.ByQuery))
	sh.shot("10-diff")
	run(t, ctx, "history", chromedp.Navigate(s.APIURL+"/apps/hello/deployments"), chromedp.WaitVisible("table", chromedp.ByQuery))
	sh.shot("11-deployments")
	run(t, ctx, "overview", chromedp.Navigate(s.APIURL+"/"), chromedp.WaitVisible("#env-prod", chromedp.ByQuery))
	sh.shot("12-overview-after")

	// Every action went through the API's audit trail as the token's holder.
	es, err := s.Store.ListAudit(context.Background(), gantry.AuditFilter{App: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	var mine []string
	for _, e := range es {
		if e.Actor == "release-manager" {
			mine = append(mine, shortOperation(e.Operation)+" "+e.Env+" "+e.Result)
		}
	}
	if got := strings.Join(mine, ", "); !strings.Contains(got, "POST deploy test ok") || !strings.Contains(got, "POST promote prod ok") || !strings.Contains(got, "POST rollback prod ok") {
		t.Errorf("audit entries of release-manager: %s", got)
	}
}
