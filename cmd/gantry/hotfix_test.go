package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/loadtest"
	"time"
)

// TestW6HotfixWithPurge follows seed 004: a hotfix version YY.MM.Rx from a
// hotfix branch, built from a clean export of the commit, deployed to test
// and to prod with zero failed requests (the seed accepts 5–30 s of
// downtime), and the CDN cache purged by a webhook after each switch. A
// failing pre-deploy hook stops a deploy before anything changes.
func TestW6HotfixWithPurge(t *testing.T) {
	needTools(t)
	var mu sync.Mutex
	var purges []map[string]any
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		mu.Lock()
		purges = append(purges, body)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer cdn.Close()

	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	built := filepath.Join(t.TempDir(), "built")
	editManifest(t, repo, "calendar versions, CDN purge", func(m string) string {
		m = strings.Replace(m, "scheme: semver", "scheme: calver", 1)
		// Regular releases need an approval for prod; the hotfix channel does not.
		m = strings.Replace(m, "    promote_from: test\n", "    promote_from: test\n    approvals: {required: 1}\n    hotfix_approvals: {required: 0}\n", 1)
		return m + "hooks:\n  after_switch:\n    - webhook: {url: \"" + cdn.URL + "/purge\", method: POST}\n" +
			"  after_build:\n    - command: echo \"$GANTRY_VERSION $GANTRY_COMMIT\" >> " + built + "\n"
	})
	commitChange(t, repo, "VERSION", "16.03.1\n", "16.03.1")
	git(t, repo, "tag", "16.03.1")
	cli := func(args ...string) string { t.Helper(); return mustCLI(t, s.APIURL, args...) }
	cli("app", "add", "hello", "--repo", repo)
	cli("deploy", "test", "--ref", "16.03.1")
	if _, errs, code := runCLI(t, s.APIURL, "promote", "test", "prod"); code != 4 {
		t.Fatalf("a regular release reached prod without its approval: exit %d, %s", code, errs)
	}
	if _, err := s.Client.Approve(context.Background(), gantry.ApproveRequest{App: "hello", Env: "prod", Release: "16.03.1"}); err != nil {
		t.Fatal(err)
	}
	cli("promote", "test", "prod")

	// The hotfix branch; uncommitted work in the repository must not leak.
	git(t, repo, "checkout", "-q", "-b", "hotfix/16.03.1b")
	commitChange(t, repo, "README.md", "hotfix\n", "fix the checkout")
	writeFile(t, repo, "main.go", "package main\n\nthis does not compile\n")

	load := loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: "hello.localhost", Workers: 2, MaxDuration: 5 * time.Minute})
	out := cli("release", "build", "--ref", "hotfix/16.03.1b", "--json")
	if !strings.Contains(out, `"version": "16.03.1b"`) {
		t.Fatalf("hotfix release:\n%s\nwant version 16.03.1b", out)
	}
	cli("deploy", "test", "--release", "16.03.1b")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "16.03.1b")
	cli("promote", "test", "prod") // the hotfix channel: no approval needed
	wantVersion(t, s.RouterURL, "hello.localhost", "16.03.1b")
	load.Stop()
	if n := load.Failed.Load(); n != 0 || load.OK.Load() == 0 {
		t.Errorf("prod during the hotfix: %d failed, %d ok; want 0 failed:\n%s", n, load.OK.Load(), strings.Join(load.Failures(), "\n"))
	}

	mu.Lock()
	got := append([]map[string]any(nil), purges...)
	mu.Unlock()
	var hotfixPurges []string
	for _, p := range got {
		if p["version"] == "16.03.1b" {
			hotfixPurges = append(hotfixPurges, p["env"].(string))
		}
	}
	if strings.Join(hotfixPurges, ",") != "test,prod" {
		t.Errorf("CDN purges for the hotfix: %v, want test then prod (all: %v)", hotfixPurges, got)
	}
	if b, err := os.ReadFile(built); err != nil || !strings.Contains(string(b), "16.03.1b ") {
		t.Errorf("after_build hook did not run for the hotfix: %q, %v", b, err)
	}
	if d := lastDeployment(t, s, "prod"); !journalHas(d, "hooks after_switch", "") {
		t.Errorf("prod's journal has no after_switch hook step: %+v", d.Steps)
	}

	// A failing pre-deploy hook stops the deploy; prod keeps serving.
	git(t, repo, "checkout", "-q", "--", "main.go")
	editManifest(t, repo, "pre-deploy check", func(m string) string {
		return strings.Replace(m, "hooks:\n", "hooks:\n  before_deploy:\n    - command: echo 'change ticket missing' >&2; exit 1\n", 1)
	})
	commitChange(t, repo, "VERSION", "16.03.1c\n", "16.03.1c")
	_, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--ref", "HEAD", "--version", "16.03.1c")
	if code == 0 || !strings.Contains(errs, "change ticket missing") {
		t.Errorf("deploy with a failing pre-hook: exit %d, %q; want a failure with the hook's output", code, errs)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "16.03.1b")
}
