package proxy

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// gateRoute is a route object for gate tests, with no targets.
func gateRoute(tb testing.TB, queue int, timeout time.Duration) *route {
	tb.Helper()
	r := New(Config{})
	tb.Cleanup(func() { r.Close() })
	rt := r.newRoute("app/prod")
	rt.cfg.Store(&gantry.Route{Name: "app/prod", PauseQueue: queue, PauseTimeout: timeout})
	return rt
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })

func serveGate(rt *route, method, accept string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	WithGateMiddleware(okHandler).ServeHTTP(rec, withState(req, &requestState{route: rt}))
	return rec
}

func TestGateMaintenance(t *testing.T) {
	rt := gateRoute(t, 10, time.Second)
	if rec := serveGate(rt, http.MethodGet, ""); rec.Code != 200 {
		t.Fatalf("no maintenance: got %d, want 200", rec.Code)
	}
	rt.maint.Store(&maintenance{message: "Back at <b>5pm</b>"})
	tests := []struct {
		accept, wantType string
	}{
		{"", "text/html; charset=utf-8"},
		{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html; charset=utf-8"},
		{"application/json", "application/json"},
		{"application/problem+json, text/html", "application/json"},
	}
	for _, tt := range tests {
		rec := serveGate(rt, http.MethodGet, tt.accept)
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
			t.Errorf("Accept %q: got %d Retry-After %q, want 503 with Retry-After", tt.accept, rec.Code, rec.Header().Get("Retry-After"))
		}
		if got := rec.Header().Get("Content-Type"); got != tt.wantType {
			t.Errorf("Accept %q: Content-Type %q, want %q", tt.accept, got, tt.wantType)
		}
		body := rec.Body.String()
		if tt.wantType == "application/json" {
			var v struct{ Error, Message string }
			if err := json.Unmarshal([]byte(body), &v); err != nil || v.Error != "maintenance" || v.Message != "Back at <b>5pm</b>" {
				t.Errorf("JSON maintenance body %q: %+v %v", body, v, err)
			}
		} else if !strings.Contains(body, "Back at &lt;b&gt;5pm&lt;/b&gt;") {
			t.Errorf("HTML maintenance body does not carry the escaped message:\n%s", body)
		}
	}
}

func TestGatePauseBounds(t *testing.T) {
	rt := gateRoute(t, 2, 150*time.Millisecond)
	g := &pauseGate{}
	rt.pause.Store(g)

	// Past the time bound: 503 with Retry-After.
	start := time.Now()
	rec := serveGate(rt, http.MethodGet, "")
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("held past the timeout: got %d Retry-After %q, want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Errorf("answered after %s, before the pause timeout", took)
	}

	// Past the queue bound: 503 at once.
	rt.cfg.Store(&gantry.Route{Name: "app/prod", PauseQueue: 2, PauseTimeout: time.Minute})
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- serveGate(rt, http.MethodPost, "").Code
		}()
	}
	waitFor(t, "two held requests", 5*time.Second, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == 2
	})
	if rec := serveGate(rt, http.MethodPost, ""); rec.Code != 503 {
		t.Errorf("third request with a queue of 2: got %d, want 503", rec.Code)
	}
	rt.pause.Store(nil)
	g.release()
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("held request after release: got %d, want 200", c)
		}
	}
}

func TestGateWritesOnly(t *testing.T) {
	rt := gateRoute(t, 10, 50*time.Millisecond)
	g := &pauseGate{}
	g.writesOnly.Store(true)
	rt.pause.Store(g)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodOptions} {
		if rec := serveGate(rt, m, ""); rec.Code != 200 {
			t.Errorf("%s during a writes-only pause: got %d, want 200", m, rec.Code)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if rec := serveGate(rt, m, ""); rec.Code != 503 {
			t.Errorf("%s during a writes-only pause (past its timeout): got %d, want 503", m, rec.Code)
		}
	}
}

func TestPauseReleasesEveryHeldRequest(t *testing.T) {
	g := &pauseGate{}
	const n = 20
	passed := make(chan int, n)
	for i := 0; i < n; i++ {
		go func() {
			if g.hold(context.Background(), n, time.Minute) == holdReleased {
				passed <- i
			}
		}()
		// Enqueue one at a time so arrival order is known.
		waitFor(t, "waiter queued", 5*time.Second, func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.queue) == i+1
		})
	}
	g.release()
	seen := map[int]bool{}
	for i := 0; i < n; i++ {
		select {
		case k := <-passed:
			seen[k] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d held requests released", i, n)
		}
	}
	if len(seen) != n {
		t.Errorf("released %d distinct requests, want %d", len(seen), n)
	}
}

func TestHealthPathAnswersDuringMaintenance(t *testing.T) {
	r, front := MustRouter(t, Config{HealthPath: "/.gantry/up"})
	MustDeploy(t, r, fastRoute("app/prod", "app.localhost"), MustBackend(t, "a").addr())
	if err := r.Maintenance(context.Background(), "app/prod", true, "upgrading"); err != nil {
		t.Fatal(err)
	}
	c := testClient()
	if code, body := MustGet(t, c, front, "app.localhost", "/"); code != 503 || !strings.Contains(body, "upgrading") {
		t.Errorf("maintenance page: got %d %q", code, body)
	}
	for _, host := range []string{"app.localhost", "unknown.localhost"} {
		if code, _ := MustGet(t, c, front, host, "/.gantry/up"); code != 200 {
			t.Errorf("health path on %s during maintenance: got %d, want 200", host, code)
		}
	}
	if err := r.Maintenance(context.Background(), "app/prod", false, ""); err != nil {
		t.Fatal(err)
	}
	if code, body := MustGet(t, c, front, "app.localhost", "/"); code != 200 || body != "a" {
		t.Errorf("after maintenance: got %d %q", code, body)
	}
}

// restartable is a backend whose process can stop and start again on the
// same address, like an app restarted in place.
type restartable struct {
	addr string
	srv  *http.Server
}

func (b *restartable) start(tb testing.TB) {
	tb.Helper()
	var l net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err = net.Listen("tcp", b.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		tb.Fatal(err)
	}
	b.addr = l.Addr().String()
	b.srv = &http.Server{Handler: MustBackendHandler("r")}
	go b.srv.Serve(l)
}

// stop shuts down gracefully, then closes connections that never carried a
// request (Shutdown would wait 5s for those).
func (b *restartable) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_ = b.srv.Shutdown(ctx)
	_ = b.srv.Close()
}

// MustBackendHandler is the handler of a backend named name.
func MustBackendHandler(name string) http.Handler {
	return (&backend{name: name}).handler()
}

func TestPauseDuringBackendRestart(t *testing.T) {
	r, front := MustRouter(t, Config{})
	b := &restartable{addr: "127.0.0.1:0"}
	b.start(t)
	t.Cleanup(b.stop)
	rc := fastRoute("app/prod", "app.localhost")
	rc.PauseTimeout = 10 * time.Second
	MustDeploy(t, r, rc, b.addr)

	stop := make(chan struct{})
	res, wg := runLoad(front.URL, "app.localhost", "/", http.MethodGet, 8, stop)
	waitFor(t, "load running", 5*time.Second, func() bool { return res.ok.Load() > 20 })
	if err := r.Pause(context.Background(), "app/prod", false); err != nil {
		t.Fatal(err)
	}
	b.stop()
	// The backend stays down until requests are being held, so the restart
	// really overlaps traffic.
	rt, _ := r.liveRoute("app/prod")
	waitFor(t, "requests held by the pause", 5*time.Second, func() bool {
		g := rt.pause.Load()
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) >= 4
	})
	b.start(t)
	if err := r.Resume(context.Background(), "app/prod"); err != nil {
		t.Fatal(err)
	}
	after := res.ok.Load()
	waitFor(t, "load after resume", 10*time.Second, func() bool { return res.ok.Load() > after+20 })
	close(stop)
	wg.Wait()
	if n := res.failed.Load(); n != 0 {
		t.Errorf("%d requests failed across a paused restart, first: %s", n, res.firstErr)
	}
}

func TestPausePastBoundAnswers503(t *testing.T) {
	r, front := MustRouter(t, Config{})
	rc := fastRoute("app/prod", "app.localhost")
	rc.PauseTimeout = 100 * time.Millisecond
	MustDeploy(t, r, rc, MustBackend(t, "a").addr())
	if err := r.Pause(context.Background(), "app/prod", true); err != nil {
		t.Fatal(err)
	}
	c := testClient()
	if code, _ := MustGet(t, c, front, "app.localhost", "/"); code != 200 {
		t.Errorf("GET during a writes-only pause: got %d, want 200", code)
	}
	req, _ := http.NewRequest(http.MethodPost, front.URL+"/", strings.NewReader("x"))
	req.Host = "app.localhost"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST past the pause bound: got %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	st, _ := r.Status(context.Background())
	if !st[0].Paused || !st[0].WritesOnly {
		t.Errorf("status paused=%v writes_only=%v, want both", st[0].Paused, st[0].WritesOnly)
	}
}
