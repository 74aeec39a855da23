package docker_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// get asks url with a Host header and returns the status and body.
func get(url, host string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if host != "" {
		req.Host = host
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustBody checks that url (with host) answers 200 with exactly want.
func mustBody(t *testing.T, url, host, want string) {
	t.Helper()
	if code, body := get(url, host); code != http.StatusOK || body != want {
		t.Errorf("GET %s (Host %s) = %d %q, want %q", url, host, code, body, want)
	}
}

// siblingsFound checks, on the slot serving host, that the web reaches the
// api of its own slot through GANTRY_SERVICE_API_URL.
func siblingsFound(t *testing.T, router, host string) {
	t.Helper()
	_, apiURL := get(router+"/env?name=GANTRY_SERVICE_API_URL", host)
	_, slot := get(router+"/env?name=GANTRY_SLOT", host)
	if !strings.HasPrefix(apiURL, "http://127.0.0.1:") {
		t.Fatalf("web's GANTRY_SERVICE_API_URL = %q", apiURL)
	}
	mustBody(t, apiURL+"/env?name=GANTRY_SERVICE", "", "api")
	mustBody(t, apiURL+"/env?name=GANTRY_SLOT", "", slot)
}

// TestAppModelOnDocker: a three-service app (web, api on its own host, a
// worker; each its own version) on the Docker runtime under load: each
// http service answers only on its route, the web finds the api of its own
// slot, a change to the api restarts only the api, uploads made through a
// switch, a rollback and a clone are all present afterwards in every slot
// that should see them, and a promotion that would break a requirement on
// another app is refused with exit 4 before anything starts; no request
// fails.
func TestAppModelOnDocker(t *testing.T) {
	denv := dockertest.Get(t)
	st := startStack(t, denv)
	reg := denv.Registries[0].Addr
	svc := func(name, extra string) string {
		return "  " + name + ":\n    docker: {dockerfile: Dockerfile, context: .}\n    run: /testapp\n    stop: {timeout: 5s}\n" + extra
	}
	manifest := "app: shop\nservices:\n" +
		svc("web", "    health: {path: /up, interval: 100ms}\n    persist: [uploads]\n    requires: {\"app:billing\": \">=2.0.0\"}\n    version_file: web/VERSION\n") +
		svc("api", "    health: {path: /up, interval: 100ms}\n    route: {hosts: [api]}\n    version_file: api/VERSION\n") +
		svc("worker", "    http: false\n    ready_delay: 200ms\n    persist: [uploads]\n    version_file: worker/VERSION\n") +
		"environments:\n" +
		"  staging:\n    hosts: [staging.shop.localhost]\n    runtime: {driver: docker, registry: " + reg + "/shop}\n" +
		"  production:\n    hosts: [shop.localhost]\n    runtime: {driver: docker, registry: " + reg + "/shop}\n    promote_from: staging\n"
	billing := newImageRepo(t, "billing", "master", "app: billing\nservices:\n"+svc("job", "    http: false\n    ready_delay: 100ms\n")+
		"environments:\n  staging:\n    hosts: [staging.billing.localhost]\n    runtime: {driver: docker, registry: "+reg+"/billing}\n"+
		"  production:\n    hosts: [billing.localhost]\n    runtime: {driver: docker, registry: "+reg+"/billing}\n")
	billing.commit("1.5.0", nil)
	st.cli(t, 0, "app", "add", "billing", "--repo", billing.Dir)
	st.cli(t, 0, "deploy", "production", "--app", "billing", "--ref", "master")
	billing.commit("2.1.0", nil)
	st.cli(t, 0, "deploy", "staging", "--app", "billing", "--ref", "master")

	repo := newImageRepo(t, "shop", "master", manifest)
	repo.commit("1.0.0", map[string]string{"web/VERSION": "1.0.0\n", "api/VERSION": "1.0.0\n", "worker/VERSION": "1.0.0\n"})
	st.cli(t, 0, "app", "add", "shop", "--repo", repo.Dir)
	st.cli(t, 0, "deploy", "staging", "--app", "shop", "--ref", "master")

	router := "http://" + st.router
	const web, api = "staging.shop.localhost", "api.staging.shop.localhost"
	mustBody(t, router+"/env?name=GANTRY_SERVICE", web, "web")
	mustBody(t, router+"/env?name=GANTRY_SERVICE", api, "api")
	siblingsFound(t, router, web)
	if t.Failed() {
		t.FailNow()
	}

	loads := []*loadtest.Load{
		loadtest.Start(loadtest.Options{URL: router + "/", Host: web, Workers: 2, MaxDuration: 10 * time.Minute}),
		loadtest.Start(loadtest.Options{URL: router + "/", Host: api, Workers: 2, MaxDuration: 10 * time.Minute}),
	}
	var stored []string
	var failed atomic.Int64
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 30 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("f%05d", i)
			req, _ := http.NewRequest(http.MethodPost, router+"/file?dir=uploads&name="+name, strings.NewReader("content of "+name))
			req.Host = web
			resp, err := client.Do(req)
			if err != nil || resp.StatusCode != http.StatusCreated {
				failed.Add(1)
			} else {
				mu.Lock()
				stored = append(stored, name)
				mu.Unlock()
			}
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	// A change to the api alone, restarted in place: its image changes,
	// the web's and the worker's are built again into the same digests and
	// left running.
	before := st.handles(t, "staging")
	repo.commit("1.0.1", map[string]string{"api/VERSION": "1.1.0\n"})
	if out := st.cli(t, 0, "deploy", "staging", "--app", "shop", "--ref", "master", "--strategy", "restart"); !strings.Contains(out, "left running (unchanged): web, worker") {
		t.Errorf("deploy of the api change says:\n%s\nwant web and worker left running", out)
	}
	after := st.handles(t, "staging")
	for _, s := range []string{"web", "api", "worker"} {
		if restarted := before[s] != after[s]; restarted != (s == "api") {
			t.Errorf("%s restarted = %v, want %v (handles %q → %q)", s, restarted, s == "api", before[s], after[s])
		}
	}
	mustBody(t, router+"/env?name=GANTRY_SERVICE_VERSION", api, "1.1.0")
	siblingsFound(t, router, web)

	// A change to the web, blue-green: a switch, then a rollback.
	repo.commit("1.1.0", map[string]string{"web/VERSION": "1.1.0\n"})
	st.cli(t, 0, "deploy", "staging", "--app", "shop", "--ref", "master")
	mustBody(t, router+"/env?name=GANTRY_SERVICE_VERSION", web, "1.1.0")
	siblingsFound(t, router, web)
	time.Sleep(300 * time.Millisecond)
	st.cli(t, 0, "rollback", "staging", "--app", "shop")
	mustBody(t, router+"/env?name=GANTRY_SERVICE_VERSION", web, "1.0.0")
	siblingsFound(t, router, web)
	time.Sleep(300 * time.Millisecond)
	// The clone is made while uploads go on: it has every file stored
	// before it began.
	mu.Lock()
	beforeClone := len(stored)
	mu.Unlock()
	st.cli(t, 0, "env", "clone", "staging", "copy", "--app", "shop", "--with-data")
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done
	for _, l := range loads {
		l.Stop()
		if n := l.Failed.Load(); n != 0 {
			t.Errorf("%d of %d requests failed; first: %s", n, n+l.OK.Load(), strings.Join(l.Failures(), "\n"))
		}
	}
	if failed.Load() > 0 || len(stored) < 10 {
		t.Errorf("uploads: %d stored, %d failed", len(stored), failed.Load())
	}
	check := func(base, host string, names []string, when string) {
		t.Helper()
		missing := 0
		for _, n := range names {
			if code, body := get(base+"/file?dir=uploads&name="+n, host); code != http.StatusOK || body != "content of "+n {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d uploaded files missing", when, missing, len(names))
		}
	}
	check(router, web, stored, "through the router after the switch, the rollback and the clone")
	slots := 0
	for slot, addrs := range st.webAddrs(t, "staging") {
		for _, a := range addrs {
			check("http://"+a, "", stored, "on staging's "+slot+" web at "+a)
		}
		slots++
	}
	if slots != 2 {
		t.Errorf("staging runs a web in %d slots, want both (the previous one kept warm)", slots)
	}
	check(router, "copy.shop.localhost", stored[:beforeClone], "on the clone")

	out := st.cli(t, 4, "promote", "staging", "production", "--app", "shop")
	if !strings.Contains(out, "web 1.0.0 requires app billing >=2.0.0, and billing runs 1.5.0") {
		t.Errorf("refused promotion says:\n%s\nwant both versions", out)
	}
	if got := st.handles(t, "production"); len(got) != 0 {
		t.Errorf("after the refused promotion production runs %v, want nothing started", got)
	}
	st.cli(t, 0, "deploy", "production", "--app", "billing", "--release", "2.1.0")
	st.cli(t, 0, "promote", "staging", "production", "--app", "shop")
	mustBody(t, router+"/env?name=GANTRY_SERVICE", "api.shop.localhost", "api")
	t.Logf("%d + %d requests and %d uploads through a restart, a switch, a rollback and a clone, none failed", loads[0].OK.Load(), loads[1].OK.Load(), len(stored))
}

// envStatus is what the scenario reads of `gantry status --json`.
type envStatus struct {
	Name   string
	Active string
	Slots  map[string]struct {
		Instances []struct{ Service, Handle, Addr string }
	}
}

func (st *stack) status(t *testing.T, env string) envStatus {
	t.Helper()
	var envs []envStatus
	if err := json.Unmarshal([]byte(st.cli(t, 0, "status", "--app", "shop", "--json")), &envs); err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		if e.Name == env {
			return e
		}
	}
	return envStatus{}
}

// handles are the handles of env's active instances by service.
func (st *stack) handles(t *testing.T, env string) map[string]string {
	t.Helper()
	e := st.status(t, env)
	out := map[string]string{}
	for _, in := range e.Slots[e.Active].Instances {
		out[in.Service] += in.Handle + " "
	}
	return out
}

// webAddrs are the addresses of env's web instances, by slot.
func (st *stack) webAddrs(t *testing.T, env string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for slot, s := range st.status(t, env).Slots {
		for _, in := range s.Instances {
			if in.Service == "web" && in.Addr != "" {
				out[slot] = append(out[slot], in.Addr)
			}
		}
	}
	return out
}
