package kubernetes_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/k8stest"
	corev1 "k8s.io/api/core/v1"
)

// Real traffic on the test cluster: the pods of k8stest.ServeImages serve
// HTTP on their pod IPs (k8stest.Serve), answered by the test's app below.
// Release i runs ServeImages[i]; what each release answers is the test's.

var serveVersions = []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"}

func serveReleases() map[string]string {
	imgs := map[string]string{}
	for i, v := range serveVersions {
		imgs[v] = k8stest.ServeImages[i]
	}
	return imgs
}

// app answers a request to a pod of release version; nil means 200 and
// "version=<version>" everywhere.
type app func(version, path string) (int, string)

// breaks is an app whose release version answers 500 "broken" at path.
func breaks(version, path string) app {
	return func(v, p string) (int, string) {
		if v == version && p == path {
			return http.StatusInternalServerError, "broken"
		}
		return http.StatusOK, "version=" + v
	}
}

// serveApp makes the namespace's pods answer as a.
func serveApp(t *testing.T, c *k8stest.Cluster, ns string, a app) {
	t.Helper()
	c.Serve(t, ns, 8080, func(pod *corev1.Pod) http.Handler {
		version := "?"
		for i, img := range k8stest.ServeImages {
			if pod.Spec.Containers[0].Image == img {
				version = serveVersions[i]
			}
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code, body := http.StatusOK, "version="+version
			if a != nil && r.URL.Path != "/up" {
				code, body = a(version, r.URL.Path)
			}
			w.WriteHeader(code)
			fmt.Fprintf(w, "%s slot=%s ip=%s", body, pod.Labels["gantry.dev/slot"], pod.Status.PodIP)
		})
	})
}

// serveManifest is the app of these tests on namespace ns: one web
// service of two instances with a verify check; runtime and env add to
// the environment's runtime settings and to the environment.
func serveManifest(ns, runtime, env string) string {
	return `app: shop
services:
  web:
    docker: {dockerfile: Dockerfile}
    run: /web
    instances: 2
    health: {path: /up, interval: 200ms}
verify:
  - http: {path: /version, status: 200, contains: "version="}
environments:
  test:
    hosts: [test.shop.localhost]
    runtime: {driver: kubernetes, namespace: ` + ns + runtime + `}
    keep_warm: 10m
` + env
}

// TestVerifyOnKubernetes runs the manifest's verify checks on the cluster's
// own routing (runtime.traffic left to cluster), as from outside the
// cluster: through the API server's service proxy to the preview Service,
// to real servers on the candidate's pod IPs. Passing checks let the
// switch happen; a failing check stops the rollout: the candidate is not
// switched to and is scaled down, the live slot keeps serving.
func TestVerifyOnKubernetes(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "verify")
	serveApp(t, c, ns, breaks("1.2.0", "/version"))
	g := newServer(t, c, serveManifest(ns, "", ""), serveReleases())

	g.cli(0, "deploy", "test", "--release", "1.0.0")
	out := g.cli(0, "deploy", "test", "--release", "1.1.0", "--json")
	if !strings.Contains(out, "passed: GET /version") || !strings.Contains(out, "service proxy") {
		t.Errorf("the deploy of 1.1.0 does not say its check passed through the service proxy:\n%s", out)
	}
	if got := liveSlot(t, c, ns); got != "green" {
		t.Fatalf("after 1.1.0 the live Service selects %q, want green", got)
	}
	out = g.cli(1, "deploy", "test", "--release", "1.2.0")
	if !strings.Contains(out, "verify check 1 failed") || !strings.Contains(out, "status 500") {
		t.Errorf("the failed deploy does not name the failed check:\n%s", out)
	}
	if got := liveSlot(t, c, ns); got != "green" {
		t.Errorf("after a failed verify the live Service selects %q, want green (1.1.0)", got)
	}
	if n := replicas(t, c, ns, "blue"); n != 0 {
		t.Errorf("the candidate that failed its check has %d replicas, want 0 (scaled down)", n)
	}
	if n := replicas(t, c, ns, "green"); n != 2 {
		t.Errorf("the live slot has %d replicas, want 2", n)
	}
	status := g.cli(0, "status", "test")
	if !strings.Contains(status, "1.1.0") {
		t.Errorf("status after the failed verify:\n%s", status)
	}
}

// load sends requests through Gantry's router to the environment's host
// until stopped, and counts the answers by what they say.
type load struct {
	mu     sync.Mutex
	counts map[string]int // "200 version=1.0.0", "500 broken", "error"
	stop   chan struct{}
	done   chan struct{}
}

func startLoad(t *testing.T, router, host string) *load {
	return startLoadBy(t, router, host, func(code int, body string) string {
		return fmt.Sprintf("%d %s", code, strings.Fields(body + " ?")[0])
	})
}

// startLoadBy is startLoad counting the answers by key(status, body).
func startLoadBy(t *testing.T, router, host string, key func(code int, body string) string) *load {
	l := &load{counts: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(l.done)
		for {
			select {
			case <-l.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+router+"/", nil)
			req.Host = host
			k := "error"
			if resp, err := client.Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				k = key(resp.StatusCode, string(b))
			}
			l.mu.Lock()
			l.counts[k]++
			l.mu.Unlock()
		}
	}()
	t.Cleanup(l.end)
	return l
}

// take returns the counts so far and starts counting afresh.
func (l *load) take() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.counts
	l.counts = map[string]int{}
	return c
}

func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// TestWatchOnKubernetesBehindRouter puts Gantry's router in front of the
// pods (runtime.traffic: router, Gantry inside the cluster's network):
// verify goes through the router's preview host, the switch through the
// router and then the cluster's Services, and the post-switch watch reads
// the router's figures for the new slot. A release that answers 500 to
// real traffic is rolled back automatically, router and Services both; a
// good one passes the watch, and its switch fails no request, nor does a
// rollback, the router's flip back.
func TestWatchOnKubernetesBehindRouter(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "watch")
	serveApp(t, c, ns, breaks("1.1.0", "/"))
	g := newServer(t, c, serveManifest(ns, ", traffic: router", "    watch: {window: 4s, max_error_rate: 0.05, min_requests: 20}\n"), serveReleases())

	g.cli(0, "deploy", "test", "--release", "1.0.0")
	l := startLoad(t, g.router, "test.shop.localhost")
	time.Sleep(500 * time.Millisecond)
	if got := l.take(); got["200 version=1.0.0"] == 0 || len(got) != 1 {
		t.Fatalf("through the router before 1.1.0: %v, want only 1.0.0's answers", got)
	}

	out := g.cli(1, "deploy", "test", "--release", "1.1.0")
	if !strings.Contains(out, "rolled back automatically") || !strings.Contains(out, "error rate") {
		t.Errorf("the deploy of 1.1.0 does not say it was rolled back for its error rate:\n%s", out)
	}
	if !strings.Contains(out, "through Gantry's router") {
		t.Errorf("the verify of 1.1.0 did not go through the router's preview:\n%s", out)
	}
	if got := liveSlot(t, c, ns); got != "blue" {
		t.Errorf("after the automatic rollback the live Service selects %q, want blue", got)
	}
	time.Sleep(300 * time.Millisecond)
	t.Logf("answers while 1.1.0 was deployed, watched and rolled back: %v", l.take())
	time.Sleep(500 * time.Millisecond)
	if got := l.take(); got["200 version=1.0.0"] == 0 || len(got) != 1 {
		t.Errorf("through the router after the rollback: %v, want only 1.0.0's answers", got)
	}

	out = g.cli(0, "deploy", "test", "--release", "1.2.0")
	if !strings.Contains(out, "within bounds") {
		t.Errorf("the deploy of 1.2.0 does not say the watch passed:\n%s", out)
	}
	time.Sleep(300 * time.Millisecond)
	got := l.take()
	for k, n := range got {
		if k != "200 version=1.0.0" && k != "200 version=1.2.0" {
			t.Errorf("%d requests answered %q during the switch to 1.2.0, want none (all %v)", n, k, got)
		}
	}
	if got["200 version=1.2.0"] == 0 {
		t.Errorf("no request reached 1.2.0: %v", got)
	}
	t.Logf("answers during the deploy of 1.2.0: %v", got)
	if s := liveSlot(t, c, ns); s != "green" {
		t.Errorf("after 1.2.0 the live Service selects %q, want green", s)
	}

	// A rollback is the router's flip back to the warm slot, and the
	// Services follow; it fails no request either.
	g.cli(0, "rollback", "test")
	time.Sleep(300 * time.Millisecond)
	got = l.take()
	for k, n := range got {
		if k != "200 version=1.0.0" && k != "200 version=1.2.0" {
			t.Errorf("%d requests answered %q during the rollback, want none (all %v)", n, k, got)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if got := l.take(); got["200 version=1.0.0"] == 0 || len(got) != 1 {
		t.Errorf("through the router after the rollback: %v, want only 1.0.0's answers", got)
	}
	if s := liveSlot(t, c, ns); s != "blue" {
		t.Errorf("after the rollback the live Service selects %q, want blue", s)
	}
}
