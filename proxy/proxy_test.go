package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func TestUnknownAndBadHost(t *testing.T) {
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app/prod", "app.localhost"), MustBackend(t, "a").addr())
	c := testClient()
	code, body := MustGet(t, c, front, "evil<script>.localhost", "/")
	if code != http.StatusBadRequest || strings.Contains(body, "script") {
		t.Errorf("bad Host: got %d %q, want 400 without the host echoed", code, body)
	}
	code, body = MustGet(t, c, front, "unknown.localhost", "/")
	if code != http.StatusNotFound || strings.Contains(body, "unknown") {
		t.Errorf("unknown Host: got %d %q, want 404 without the host echoed", code, body)
	}
	// Through ServeHTTP directly too: an empty Host never reaches a route.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = ""
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("empty Host: got %d, want 400", rec.Code)
	}
}

func TestForwardedHeadersReachUpstream(t *testing.T) {
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app/prod", "app.localhost"), MustBackend(t, "a").addr())
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/echo-headers", nil)
	req.Host = "App.localhost:8080"
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Proto", "https") // a client's claim, not trusted
	req.Header.Set("X-Request-ID", "abc-123")
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	got := string(b)
	for _, want := range []string{
		"X-Forwarded-For=203.0.113.9, 127.0.0.1\n",
		"X-Forwarded-Proto=http\n",
		"X-Forwarded-Host=App.localhost:8080\n",
		"X-Request-Id=abc-123\n",
		"Host=App.localhost:8080\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("upstream saw\n%s\nwant a line %q", got, want)
		}
	}
	if id := resp.Header.Get("X-Request-ID"); id != "abc-123" {
		t.Errorf("response X-Request-ID = %q, want abc-123", id)
	}
}

func TestOversizeBody(t *testing.T) {
	r, front := MustRouter(t, Config{MaxBodyBytes: 1 << 20})
	a := MustBackend(t, "a")
	rc := fastRoute("app/prod", "app.localhost")
	rc.MaxBodyBytes = 1000
	MustDeploy(t, r, rc, a.addr())
	tests := []struct {
		name     string
		body     io.Reader
		size     int64 // Content-Length; -1 for chunked
		wantCode int
	}{
		{"within limit", strings.NewReader(strings.Repeat("x", 1000)), 1000, 200},
		{"content-length over", strings.NewReader(strings.Repeat("x", 1001)), 1001, 413},
		{"chunked over", io.MultiReader(strings.NewReader(strings.Repeat("x", 5000))), -1, 413},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, front.URL+"/", tt.body)
		req.Host = "app.localhost"
		req.ContentLength = tt.size
		resp, err := testClient().Do(req)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantCode {
			t.Errorf("%s: got %d %q, want %d", tt.name, resp.StatusCode, b, tt.wantCode)
		}
		if tt.wantCode == 413 && !strings.Contains(string(b), "1000 bytes") {
			t.Errorf("%s: 413 body %q does not state the limit", tt.name, b)
		}
	}
}

func TestUpstreamErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			return
		}
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	r, front := MustRouter(t, Config{ResponseHeaderTimeout: 200 * time.Millisecond})
	MustDeploy(t, r, fastRoute("slow", "slow.localhost"), slow.Listener.Addr().String())
	if code, _ := MustGet(t, testClient(), front, "slow.localhost", "/"); code != http.StatusGatewayTimeout {
		t.Errorf("upstream slower than ResponseHeaderTimeout: got %d, want 504", code)
	}

	// An upstream that dies after the switch answers 502 (there is no other
	// instance to retry on).
	dead := MustBackend(t, "dead")
	MustDeploy(t, r, fastRoute("dead", "dead.localhost"), dead.addr())
	dead.srv.Close()
	if code, body := MustGet(t, testClient(), front, "dead.localhost", "/"); code != http.StatusBadGateway {
		t.Errorf("dead upstream: got %d %q, want 502", code, body)
	}
}

func TestRefusedConnectionRetriedOnAnotherInstance(t *testing.T) {
	r, front := MustRouter(t, Config{})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	rc.Balance = BalanceRoundRobin
	rc.Health.Interval = time.Hour // keep the dead instance in rotation
	MustDeploy(t, r, rc, a.addr(), b.addr())
	b.srv.Close()
	c := testClient()
	for i := 0; i < 10; i++ {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			req, _ := http.NewRequest(method, front.URL+"/", strings.NewReader("body"))
			req.Host = "app.localhost"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "a" {
				t.Fatalf("%s %d with one refusing instance: got %d %q, want 200 \"a\"", method, i, resp.StatusCode, body)
			}
		}
	}
}

// TestDeployKeepsARecentVerdict: a deploy that adds an instance to one
// that passed its probe recently waits for the new one's probe only. The
// health round once wanted a probe of this round from every instance but
// asked it of the stale ones alone: the recent one, probed hourly, held
// the deploy until its timeout.
func TestDeployKeepsARecentVerdict(t *testing.T) {
	r, _ := MustRouter(t, Config{})
	a := MustBackend(t, "a")
	// b answers its probes slowly: its first is still out when the
	// round starts, so the round asks b and not a.
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/up" {
			time.Sleep(100 * time.Millisecond)
		}
		io.WriteString(w, "b")
	}))
	defer b.Close()
	rc := fastRoute("app/prod", "app.localhost")
	rc.Health.Interval = time.Hour
	rc.DeployTimeout = 3 * time.Second
	MustDeploy(t, r, rc, a.addr())
	time.Sleep(200 * time.Millisecond) // a's checker has done what the first round asked
	begin := time.Now()
	MustDeploy(t, r, rc, a.addr(), b.Listener.Addr().String())
	if took := time.Since(begin); took > 2*time.Second {
		t.Errorf("adding an instance took %v", took)
	}
}

func TestUnhealthyInstanceRemovedAndRestored(t *testing.T) {
	r, front := MustRouter(t, Config{})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	rc.Balance = BalanceRoundRobin
	MustDeploy(t, r, rc, a.addr(), b.addr())
	c := testClient()
	served := func(n int) map[string]int {
		got := map[string]int{}
		for i := 0; i < n; i++ {
			_, body := MustGet(t, c, front, "app.localhost", "/")
			got[body]++
		}
		return got
	}
	if got := served(10); got["a"] == 0 || got["b"] == 0 {
		t.Fatalf("round robin over two healthy instances served %v", got)
	}
	healthy := func(addr string, want bool) func() bool {
		return func() bool {
			st, _ := r.Status(context.Background())
			for _, ts := range st[0].Active {
				if ts.Addr == addr {
					return ts.Healthy == want
				}
			}
			return false
		}
	}
	b.status.Store(503)
	waitFor(t, "b out of rotation", 5*time.Second, healthy(b.addr(), false))
	if got := served(10); got["b"] != 0 {
		t.Errorf("an unhealthy instance still served: %v", got)
	}
	b.status.Store(0)
	waitFor(t, "b back in rotation", 5*time.Second, healthy(b.addr(), true))
	if got := served(10); got["b"] == 0 {
		t.Errorf("a recovered instance got no traffic: %v", got)
	}
}

func TestLeastInFlight(t *testing.T) {
	r, front := MustRouter(t, Config{})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	MustDeploy(t, r, fastRoute("app/prod", "app.localhost"), a.addr(), b.addr())
	// Hold one request on whichever instance takes it; the next ones must
	// all go to the other.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // runs before the servers close, which wait for it
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, front.URL+"/hang", nil)
		req.Host = "app.localhost"
		if resp, err := testClient().Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, "one hanging request", 5*time.Second, func() bool { return a.hits.Load()+b.hits.Load() == 1 })
	busy := "a"
	if b.hits.Load() == 1 {
		busy = "b"
	}
	c := testClient()
	for i := 0; i < 6; i++ {
		if _, body := MustGet(t, c, front, "app.localhost", "/"); body == busy {
			t.Fatalf("request %d went to the busy instance %s", i, busy)
		}
	}
}

func TestStreamingIsNotBuffered(t *testing.T) {
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app/prod", "app.localhost"), MustBackend(t, "a").addr())
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/sse?n=3&gap=5000", nil)
	req.Host = "app.localhost"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := testClient().Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The backend waits 5s after the first event: reading it within 3s
	// proves it was not held in a buffer.
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: 0\n" {
		t.Fatalf("first SSE line = %q, %v; want it before the next event is sent", line, err)
	}
}

func TestPreviewHosts(t *testing.T) {
	r, front := MustRouter(t, Config{})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	rc.PreviewHosts = []string{"next.app.localhost"}
	MustDeploy(t, r, rc, a.addr())
	c := testClient()
	if code, _ := MustGet(t, c, front, "next.app.localhost", "/"); code != http.StatusServiceUnavailable {
		t.Errorf("preview host without a preview set: got %d, want 503", code)
	}
	if err := r.SetPreview(context.Background(), "app/prod", []string{b.addr()}); err != nil {
		t.Fatal(err)
	}
	if _, body := MustGet(t, c, front, "next.app.localhost", "/"); body != "b" {
		t.Errorf("preview host served %q, want \"b\"", body)
	}
	if _, body := MustGet(t, c, front, "app.localhost", "/"); body != "a" {
		t.Errorf("main host served %q, want \"a\"", body)
	}
	// Promoting the preview set needs no fresh round: it is being checked.
	res := MustDeploy(t, r, rc, b.addr())
	if res.HealthRound != 0 {
		t.Logf("deploy of the preview set ran a health round of %s", res.HealthRound)
	}
	if _, body := MustGet(t, c, front, "app.localhost", "/"); body != "b" {
		t.Errorf("after promoting the preview: main host served %q, want \"b\"", body)
	}
	if err := r.SetPreview(context.Background(), "app/prod", nil); err != nil {
		t.Fatal(err)
	}
	if code, _ := MustGet(t, c, front, "next.app.localhost", "/"); code != http.StatusServiceUnavailable {
		t.Errorf("cleared preview: got %d, want 503", code)
	}
}

func TestRemoveRoute(t *testing.T) {
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app/prod", "app.localhost"), MustBackend(t, "a").addr())
	if err := r.RemoveRoute(context.Background(), "app/prod"); err != nil {
		t.Fatal(err)
	}
	if code, _ := MustGet(t, testClient(), front, "app.localhost", "/"); code != 404 {
		t.Errorf("removed route answers %d, want 404", code)
	}
	if err := r.RemoveRoute(context.Background(), "app/prod"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("second remove: %v, want %s", err, gantry.ENOTFOUND)
	}
}

// BenchmarkProxy measures a request through ServeHTTP (route lookup,
// middleware, balancer, forwarding) to a tiny real backend, on the fast
// path and on the reverse proxy side by side, and reports allocations per
// request. Compare with:
//
//	go test ./proxy -run '^$' -bench 'BenchmarkProxy$' -benchmem -count 3
func BenchmarkProxy(b *testing.B) {
	for _, path := range []struct {
		name   string
		legacy bool
	}{{"path=reverseproxy", true}, {"path=fast", false}} {
		b.Run(path.name, func(b *testing.B) {
			r, _ := MustRouter(b, Config{})
			r.legacyForward = path.legacy
			be := MustBackend(b, "a")
			MustDeploy(b, r, fastRoute("app/prod", "app.localhost"), be.addr())
			req := httptest.NewRequest(http.MethodGet, "http://app.localhost/", nil)
			req.RemoteAddr = "127.0.0.1:5000"
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req.Header = http.Header{} // the middleware adds forwarding headers
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("got %d %q", rec.Code, rec.Body.String())
				}
			}
		})
	}
}

func TestRedirectHTTPS(t *testing.T) {
	r, front := MustRouter(t, Config{})
	rc := fastRoute("app/prod", "app.localhost")
	rc.RedirectHTTPS = true
	MustDeploy(t, r, rc, MustBackend(t, "a").addr())
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/cart?id=1", nil)
	req.Host = "app.localhost"
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://app.localhost/cart?id=1" {
		t.Errorf("got %d Location %q, want 308 to https://app.localhost/cart?id=1", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestConnectionCannotStripForwarded: a client that names the router's own
// fields in Connection (hop-by-hop, so dropped on the way) must not make
// the upstream see a request without them — an app that takes "no
// X-Forwarded-For" for an internal caller would be fooled. On the fast
// path and on the reverse proxy (a TE field keeps a request there).
func TestConnectionCannotStripForwarded(t *testing.T) {
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app/prod", "app.localhost"), MustBackend(t, "a").addr())
	for _, path := range []string{"fast", "reverse proxy"} {
		req, _ := http.NewRequest(http.MethodGet, front.URL+"/echo-headers", nil)
		req.Host = "app.localhost"
		req.Header.Set("Connection", "X-Forwarded-For, X-Request-Id, X-Forwarded-Proto")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		if path == "reverse proxy" {
			req.Header.Set("Te", "trailers")
		}
		resp, err := testClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := string(b)
		for _, want := range []string{"X-Forwarded-For=203.0.113.9, 127.0.0.1\n", "X-Forwarded-Proto=http\n", "X-Request-Id="} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: upstream saw\n%s\nwant a line starting %q", path, got, want)
			}
		}
	}
}
