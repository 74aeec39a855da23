package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// appModelRepo copies the three-service app of testdata/appmodel (web,
// api on /api, a worker; each its own version) into a new git repository.
func appModelRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	if err := os.CopyFS(dir, os.DirFS("testdata/appmodel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "go.mod.txt"), filepath.Join(dir, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "-q", "-m", "shop 1.0.0")
	return dir
}

// billingRepo is a second app, a lone worker, at version v.
func billingRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "billing")
	files := map[string]string{
		"gantry.yml": "app: billing\nservices:\n  job:\n    build: {artifacts: [VERSION]}\n    run: sleep 600\n    http: false\n    ready_delay: 100ms\n" +
			"environments:\n  test: {hosts: [test.billing.localhost]}\n  prod: {hosts: [billing.localhost]}\n",
		"VERSION": "1.5.0\n",
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, dir, "init", "-q", "-b", "main")
	gitIn(t, dir, "add", "-A")
	gitIn(t, dir, "commit", "-q", "-m", "billing 1.5.0")
	return dir
}

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// edit replaces old by new in a file of repo.
func edit(t *testing.T, repo, file, old, new string) {
	t.Helper()
	p := filepath.Join(repo, file)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s has no %q", file, old)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// routerGet asks the router for host and path.
func routerGet(routerURL, host, path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, routerURL+path, nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func mustGet(t *testing.T, routerURL, host, path, want string) {
	t.Helper()
	code, body, err := routerGet(routerURL, host, path)
	if err != nil || code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("GET %s%s = %d %q (%v), want 200 with %q", host, path, code, body, err, want)
	}
}

// uploader posts a new file through the router every few milliseconds
// until stopped, and remembers which it was told were stored.
type uploader struct {
	stored []string
	failed []string
	mu     sync.Mutex
	stop   atomic.Bool
	done   chan struct{}
}

func startUploads(routerURL, host string) *uploader {
	u := &uploader{done: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	go func() {
		defer close(u.done)
		for i := 0; !u.stop.Load(); i++ {
			name := fmt.Sprintf("f%05d", i)
			req, _ := http.NewRequest(http.MethodPost, routerURL+"/files/"+name, strings.NewReader("content of "+name))
			req.Host = host
			resp, err := client.Do(req)
			u.mu.Lock()
			switch {
			case err != nil:
				u.failed = append(u.failed, name+": "+err.Error())
			case resp.StatusCode != http.StatusCreated:
				u.failed = append(u.failed, fmt.Sprintf("%s: status %d", name, resp.StatusCode))
			default:
				u.stored = append(u.stored, name)
			}
			u.mu.Unlock()
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return u
}

func (u *uploader) end() (stored, failed []string) {
	u.stop.Store(true)
	<-u.done
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.stored...), append([]string(nil), u.failed...)
}

// mustHaveFiles checks that host serves every file of names.
func mustHaveFiles(t *testing.T, routerURL, host string, names []string, when string) {
	t.Helper()
	missing := 0
	for _, n := range names {
		code, body, err := routerGet(routerURL, host, "/files/"+n)
		if err != nil || code != http.StatusOK || body != "content of "+n {
			if missing++; missing <= 5 {
				t.Errorf("%s: GET %s/files/%s = %d %q (%v)", when, host, n, code, body, err)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d uploaded files missing on %s", when, missing, len(names), host)
	}
}

// shopEnv is what the scenario reads of `gantry status --json`.
type shopEnv struct {
	Name   string
	Active string
	Slots  map[string]struct {
		Instances []struct{ Service, Handle, Addr string }
	}
}

func shopStatus(t *testing.T, server, env string) shopEnv {
	t.Helper()
	var envs []shopEnv
	mustJSON(t, mustCLI(t, server, "status", "--app", "shop", "--json"), &envs)
	for _, e := range envs {
		if e.Name == env {
			return e
		}
	}
	return shopEnv{}
}

// handlesOf returns the handles of env's active instances by service.
func handlesOf(t *testing.T, server, env string) map[string]string {
	t.Helper()
	e := shopStatus(t, server, env)
	out := map[string]string{}
	for _, in := range e.Slots[e.Active].Instances {
		out[in.Service] += in.Handle + " "
	}
	return out
}

// mustHaveFilesInEverySlot checks every web instance of env, in both
// slots, straight at its address: each must serve every file of names.
func mustHaveFilesInEverySlot(t *testing.T, server, env string, names []string) {
	t.Helper()
	slots := 0
	for slot, s := range shopStatus(t, server, env).Slots {
		seen := false
		for _, in := range s.Instances {
			if in.Service == "web" && in.Addr != "" {
				mustHaveFiles(t, "http://"+in.Addr, "", names, env+"'s "+slot+" web at "+in.Addr)
				seen = true
			}
		}
		if seen {
			slots++
		}
	}
	if slots != 2 {
		t.Errorf("%s runs a web in %d slots, want both (the previous one kept warm)", env, slots)
	}
}

// sameSlot checks that web's /call-api reached the api of the web's own
// slot: the answer names the slot twice ("web-1 slot=blue via …: api-1
// slot=blue").
func sameSlot(t *testing.T, routerURL, host, when string) {
	t.Helper()
	_, body, err := routerGet(routerURL, host, "/call-api")
	var slots []string
	for _, f := range strings.Fields(body) {
		if v, ok := strings.CutPrefix(f, "slot="); ok {
			slots = append(slots, v)
		}
	}
	if err != nil || len(slots) != 2 || slots[0] == "" || slots[0] != slots[1] {
		t.Errorf("%s: /call-api = %q (%v), want the web and the api of one slot", when, body, err)
	}
}

// TestAppModelScenario runs a three-service monorepo (web, api on /api, a
// worker) on the process runtime under load: each http service answers
// only on its own route, the web finds the api through the discovery
// variables, a change to the api restarts only it, uploads made through a
// switch, a maintenance deploy (which holds them), a rollback and a clone
// are all there afterwards in both slots
// (and those made before the clone in the clone), and a promotion that
// would break a requirement on another app is refused with exit 4 before
// anything starts; no request fails throughout.
func TestAppModelScenario(t *testing.T) {
	needTools(t)
	data := t.TempDir()
	s := openServer(t, data)
	srv, router := s.APIURL, s.RouterURL
	repo, billing := appModelRepo(t), billingRepo(t)
	mustCLI(t, srv, "app", "add", "shop", "--repo", repo)
	mustCLI(t, srv, "app", "add", "billing", "--repo", billing)
	mustCLI(t, srv, "deploy", "prod", "--app", "billing", "--ref", "main")
	edit(t, billing, "VERSION", "1.5.0", "2.1.0")
	gitIn(t, billing, "commit", "-q", "-am", "billing 2.1.0")
	mustCLI(t, srv, "deploy", "test", "--app", "billing", "--ref", "main")
	mustCLI(t, srv, "deploy", "test", "--app", "shop", "--ref", "main")

	const host = "test.shop.localhost"
	mustGet(t, router, host, "/", "web-1")
	mustGet(t, router, host, "/api/hello", "api-1")
	mustGet(t, router, host, "/apix", "web-1")
	mustGet(t, router, host, "/call-api", "api-1")
	sameSlot(t, router, host, "first deploy")
	if t.Failed() {
		t.FailNow()
	}
	show := mustCLI(t, srv, "release", "show", "--app", "shop", "1.0.0")
	if !strings.Contains(show, "version 1.0.0") {
		t.Errorf("release show:\n%s\nwant the services' own versions", show)
	}

	web := loadtest.Start(loadtest.Options{URL: router + "/", Host: host, Workers: 2, MaxDuration: 10 * time.Minute})
	api := loadtest.Start(loadtest.Options{URL: router + "/api/hello", Host: host, Workers: 2, MaxDuration: 10 * time.Minute})
	up := startUploads(router, host)

	// A change to the api alone, restarted in place: only the api restarts.
	before := handlesOf(t, srv, "test")
	edit(t, repo, "api/main.go", `"api-1"`, `"api-2"`)
	edit(t, repo, "api/VERSION", "1.0.0", "1.1.0")
	edit(t, repo, "VERSION", "1.0.0", "1.1.0")
	gitIn(t, repo, "commit", "-q", "-am", "api 1.1.0")
	_, progress, code := runCLI(t, srv, "deploy", "test", "--app", "shop", "--ref", "main", "--strategy", "restart")
	if code != 0 || !strings.Contains(progress, "left running (unchanged): web, worker") {
		t.Errorf("deploy of the api change: exit %d, output:\n%s\nwant it to say web and worker were left running", code, progress)
	}
	after := handlesOf(t, srv, "test")
	for _, svc := range []string{"web", "api", "worker"} {
		if restarted := before[svc] != after[svc]; restarted != (svc == "api") {
			t.Errorf("%s restarted = %v, want %v", svc, restarted, svc == "api")
		}
	}
	mustGet(t, router, host, "/api/hello", "api-2")
	mustGet(t, router, host, "/call-api", "api-2")
	sameSlot(t, router, host, "after the api's restart")

	// A change to the web, blue-green: a switch, then a rollback.
	edit(t, repo, "web/main.go", `"web-1"`, `"web-2"`)
	edit(t, repo, "web/VERSION", "1.0.0", "1.1.0")
	edit(t, repo, "VERSION", "1.1.0", "1.2.0")
	gitIn(t, repo, "commit", "-q", "-am", "web 1.1.0")
	mustCLI(t, srv, "deploy", "test", "--app", "shop", "--ref", "main")
	mustGet(t, router, host, "/", "web-2")
	mustGet(t, router, host, "/call-api", "web-2 slot=")
	sameSlot(t, router, host, "after the switch")
	time.Sleep(300 * time.Millisecond) // uploads through the new release

	// Another, with the maintenance strategy: the uploads are held while
	// the release changes, then stored by the new one.
	edit(t, repo, "web/main.go", `"web-2"`, `"web-3"`)
	edit(t, repo, "web/VERSION", "1.1.0", "1.2.0")
	edit(t, repo, "VERSION", "1.2.0", "1.3.0")
	gitIn(t, repo, "commit", "-q", "-am", "web 1.2.0")
	if _, progress, code := runCLI(t, srv, "deploy", "test", "--app", "shop", "--ref", "main", "--strategy", "maintenance"); code != 0 || !strings.Contains(progress, "hold-writes") {
		t.Errorf("maintenance deploy: exit %d, output:\n%s\nwant writes held", code, progress)
	}
	mustGet(t, router, host, "/", "web-3")
	sameSlot(t, router, host, "after the maintenance deploy")
	time.Sleep(300 * time.Millisecond)
	mustCLI(t, srv, "rollback", "test", "--app", "shop")
	mustGet(t, router, host, "/", "web-2")
	sameSlot(t, router, host, "after the rollback")
	time.Sleep(300 * time.Millisecond)
	// A clone made while uploads go on has every file stored before it
	// began; its own uploads stay its own.
	up.mu.Lock()
	beforeClone := len(up.stored)
	up.mu.Unlock()
	mustCLI(t, srv, "env", "clone", "test", "testnew", "--app", "shop", "--with-data")
	time.Sleep(300 * time.Millisecond)
	stored, failed := up.end()
	web.Stop()
	api.Stop()
	for _, l := range []*loadtest.Load{web, api} {
		if n := l.Failed.Load(); n != 0 {
			t.Errorf("%d of %d requests failed; first: %s", n, n+l.OK.Load(), strings.Join(l.Failures(), "\n"))
		}
	}
	if len(failed) > 0 || len(stored) < 10 {
		t.Errorf("uploads: %d stored, %d failed (%v)", len(stored), len(failed), failed)
	}
	mustHaveFiles(t, router, host, stored, "after the switch, the rollback and the clone")
	mustHaveFilesInEverySlot(t, srv, "test", stored)
	mustHaveFiles(t, router, "testnew.shop.localhost", stored[:beforeClone], "on the clone")

	// billing on prod is 1.5.0; the web requires billing >=2.0.0.
	out, errs, code := runCLI(t, srv, "promote", "test", "prod", "--app", "shop")
	if code != 4 || !strings.Contains(errs, "web 1.1.0 requires app billing >=2.0.0, and billing runs 1.5.0") {
		t.Errorf("promote with billing too old: exit %d\n%s%s\nwant exit 4 naming both versions", code, out, errs)
	}
	if got := handlesOf(t, srv, "prod"); len(got) != 0 {
		t.Errorf("after the refused promotion prod runs %v, want nothing started", got)
	}
	// A deleted environment's files stay where the deletion says.
	var deleted struct {
		DataID string `json:"data_id"`
	}
	mustJSON(t, mustCLI(t, srv, "env", "delete", "testnew", "--app", "shop", "--force", "--json"), &deleted)
	if b, err := os.ReadFile(filepath.Join(gantry.PersistDir(gantry.PersistRoot(data), deleted.DataID, "uploads"), stored[0])); deleted.DataID == "" || err != nil || string(b) != "content of "+stored[0] {
		t.Errorf("after env delete (data id %q): %q, %v; want the clone's files kept", deleted.DataID, b, err)
	}

	mustCLI(t, srv, "deploy", "prod", "--app", "billing", "--release", "2.1.0")
	mustCLI(t, srv, "promote", "test", "prod", "--app", "shop")
	mustGet(t, router, "shop.localhost", "/api/hello", "api-2")
	t.Logf("%d + %d requests and %d uploads, none failed", web.OK.Load(), api.OK.Load(), len(stored))
}
