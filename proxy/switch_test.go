package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gantry-dev/gantry"
)

func TestDeploySwitchesWhenHealthy(t *testing.T) {
	r, front := MustRouter(t, Config{})
	c := testClient()
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("shop/prod", "shop.localhost")

	res := MustDeploy(t, r, rc, a.addr())
	if len(res.From) != 0 || len(res.To) != 1 || res.To[0] != a.addr() {
		t.Errorf("first deploy result = %+v, want from none to %s", res, a.addr())
	}
	if code, body := MustGet(t, c, front, "shop.localhost", "/"); code != 200 || body != "a" {
		t.Fatalf("after deploy a: got %d %q, want 200 \"a\"", code, body)
	}
	res = MustDeploy(t, r, rc, b.addr())
	if len(res.From) != 1 || res.From[0] != a.addr() {
		t.Errorf("switch result From = %v, want [%s]", res.From, a.addr())
	}
	if code, body := MustGet(t, c, front, "shop.localhost", "/"); code != 200 || body != "b" {
		t.Fatalf("after deploy b: got %d %q, want 200 \"b\"", code, body)
	}
	st, _ := r.Status(context.Background())
	if len(st) != 1 || len(st[0].Previous) != 1 || st[0].Previous[0] != a.addr() || st[0].Switches != 2 {
		t.Errorf("status = %+v, want previous [%s] and 2 switches", st, a.addr())
	}
}

func TestDeploySameTargetsIsNoop(t *testing.T) {
	r, _ := MustRouter(t, Config{})
	a := MustBackend(t, "a")
	rc := fastRoute("app/test", "app.localhost")
	MustDeploy(t, r, rc, a.addr())
	a.status.Store(503) // a health round would now fail
	res, err := r.Deploy(context.Background(), rc, []string{a.addr()})
	if err != nil {
		t.Fatalf("redeploying the active targets: %v, want success", err)
	}
	if res.HealthRound != 0 || len(res.To) != 1 {
		t.Errorf("no-op deploy result = %+v", res)
	}
	st, _ := r.Status(context.Background())
	if st[0].Switches != 1 {
		t.Errorf("switches = %d after a no-op deploy, want 1", st[0].Switches)
	}
	// The configuration is still upserted: a new host starts resolving.
	rc.Hosts = append(rc.Hosts, "www.app.localhost")
	if _, err := r.Deploy(context.Background(), rc, []string{a.addr()}); err != nil {
		t.Fatal(err)
	}
	if name, ok := r.Lookup("www.app.localhost", "/"); !ok || name != "app/test" {
		t.Errorf("host added by a no-op deploy: Lookup = %q, %v", name, ok)
	}
}

func TestFailedHealthRoundLeavesRouteServing(t *testing.T) {
	tests := []struct {
		name    string
		target  func(t *testing.T) string
		wantErr string
	}{
		{"status 500", func(t *testing.T) string {
			b := MustBackend(t, "bad")
			b.status.Store(500)
			return b.addr()
		}, "status 500"},
		{"refused", func(t *testing.T) string { return refusedAddr(t) }, "connection refused"},
		{"timeout", func(t *testing.T) string {
			stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done()
			}))
			t.Cleanup(stuck.Close)
			return stuck.Listener.Addr().String()
		}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, front := MustRouter(t, Config{})
			c := testClient()
			good := MustBackend(t, "good")
			rc := fastRoute("app/prod", "app.localhost")
			MustDeploy(t, r, rc, good.addr())

			bad := tt.target(t)
			rc.DeployTimeout = 500 * time.Millisecond
			rc.Health.Timeout = 100 * time.Millisecond
			_, err := r.Deploy(context.Background(), rc, []string{good.addr(), bad})
			if gantry.ErrorCode(err) != gantry.EUNAVAILABLE {
				t.Fatalf("deploy to an unhealthy target: err %v, want code %s", err, gantry.EUNAVAILABLE)
			}
			msg := gantry.ErrorMessage(err)
			if !strings.Contains(msg, bad) || !strings.Contains(msg, tt.wantErr) {
				t.Errorf("error %q should name target %s and say %q", msg, bad, tt.wantErr)
			}
			if code, body := MustGet(t, c, front, "app.localhost", "/"); code != 200 || body != "good" {
				t.Errorf("after the failed deploy: got %d %q, want 200 \"good\"", code, body)
			}
			st, _ := r.Status(context.Background())
			if len(st[0].Active) != 1 || st[0].Active[0].Addr != good.addr() || st[0].Switches != 1 || st[0].Route.DeployTimeout == rc.DeployTimeout {
				t.Errorf("route changed by a failed deploy: %+v", st[0])
			}
		})
	}
}

func TestFailedFirstDeployCreatesNoRoute(t *testing.T) {
	r, front := MustRouter(t, Config{})
	rc := fastRoute("new/app", "new.localhost")
	rc.DeployTimeout = 200 * time.Millisecond
	if _, err := r.Deploy(context.Background(), rc, []string{refusedAddr(t)}); err == nil {
		t.Fatal("deploy to a refused target succeeded")
	}
	if code, _ := MustGet(t, testClient(), front, "new.localhost", "/"); code != 404 {
		t.Errorf("host of a failed first deploy answers %d, want 404", code)
	}
	if st, _ := r.Status(context.Background()); len(st) != 0 {
		t.Errorf("status lists %d routes, want 0", len(st))
	}
}

func TestRollbackIsInstant(t *testing.T) {
	r, front := MustRouter(t, Config{})
	c := testClient()
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	MustDeploy(t, r, rc, a.addr())
	MustDeploy(t, r, rc, b.addr())

	start := time.Now()
	res, err := r.Rollback(context.Background(), "app/prod")
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if res.HealthRound != 0 {
		t.Errorf("rollback ran a health round of %s; the previous set was checked in the background", res.HealthRound)
	}
	t.Logf("rollback took %s inside the router", took)
	// The target is 10ms; the bound is loose because the machine is shared.
	if took > 250*time.Millisecond {
		t.Errorf("rollback took %s", took)
	}
	if code, body := MustGet(t, c, front, "app.localhost", "/"); code != 200 || body != "a" {
		t.Errorf("after rollback: got %d %q, want 200 \"a\"", code, body)
	}
	// The set rolled back from becomes the previous one.
	if _, err := r.Rollback(context.Background(), "app/prod"); err != nil {
		t.Fatal(err)
	}
	if _, body := MustGet(t, c, front, "app.localhost", "/"); body != "b" {
		t.Errorf("after the second rollback: got %q, want \"b\"", body)
	}
}

func TestRollbackWithoutPrevious(t *testing.T) {
	r, _ := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app/prod", "app.localhost"), MustBackend(t, "a").addr())
	if _, err := r.Rollback(context.Background(), "app/prod"); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("rollback without previous: %v, want code %s", err, gantry.EINVALID)
	}
	if _, err := r.Rollback(context.Background(), "nope"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("rollback of an unknown route: %v, want code %s", err, gantry.ENOTFOUND)
	}
}

func TestRollbackToUnhealthyPreviousFails(t *testing.T) {
	r, _ := MustRouter(t, Config{})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	rc.DeployTimeout = 500 * time.Millisecond
	MustDeploy(t, r, rc, a.addr())
	MustDeploy(t, r, rc, b.addr())
	a.srv.Close()
	rt, _ := r.liveRoute("app/prod")
	waitFor(t, "previous target marked unhealthy", 5*time.Second, func() bool {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		return !rt.previous.targets[0].healthy.Load()
	})
	_, err := r.Rollback(context.Background(), "app/prod")
	if gantry.ErrorCode(err) != gantry.EUNAVAILABLE || !strings.Contains(gantry.ErrorMessage(err), a.addr()) {
		t.Errorf("rollback to a dead previous set: %v, want %s naming %s", err, gantry.EUNAVAILABLE, a.addr())
	}
}

// loadResult counts what a bounded load run saw.
type loadResult struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   string
}

func (l *loadResult) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if l.firstErr == "" {
		l.firstErr = msg
	}
	l.mu.Unlock()
}

// runLoad sends requests from n goroutines until stop is closed, counting
// every non-2xx answer and every transport error as a failure.
func runLoad(front string, host, path, method string, n int, stop <-chan struct{}) (*loadResult, *sync.WaitGroup) {
	res := &loadResult{}
	var wg sync.WaitGroup
	c := testClient()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var body *strings.Reader
				if method == http.MethodPost {
					body = strings.NewReader("payload")
				} else {
					body = strings.NewReader("")
				}
				req, _ := http.NewRequest(method, front+path, body)
				req.Host = host
				resp, err := c.Do(req)
				if err != nil {
					res.fail(err.Error())
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					res.fail(resp.Status)
				} else {
					res.ok.Add(1)
				}
			}
		}()
	}
	return res, &wg
}

func TestSwitchUnderLoadFailsNoRequest(t *testing.T) {
	r, front := MustRouter(t, Config{})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	MustDeploy(t, r, rc, a.addr())
	MustDeploy(t, r, rc, b.addr())

	stop := make(chan struct{})
	res, wg := runLoad(front.URL, "app.localhost", "/", http.MethodGet, 16, stop)
	postRes, postWG := runLoad(front.URL, "app.localhost", "/", http.MethodPost, 2, stop)
	const switches = 200
	for i := 0; i < switches; i++ {
		// Let traffic reach the current set before every switch, so each
		// switch happens under load rather than before it starts.
		before := res.ok.Load()
		waitFor(t, "requests between switches", 10*time.Second, func() bool { return res.ok.Load() > before })
		var err error
		if i%2 == 0 {
			_, err = r.Rollback(context.Background(), "app/prod")
		} else {
			_, err = r.Deploy(context.Background(), rc, []string{b.addr()})
		}
		if err != nil {
			close(stop)
			t.Fatalf("switch %d: %v", i, err)
		}
	}
	close(stop)
	wg.Wait()
	postWG.Wait()
	t.Logf("%d switches under load: %d GET ok, %d POST ok", switches, res.ok.Load(), postRes.ok.Load())
	if n := res.failed.Load() + postRes.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during switches, first: %s%s", n, res.firstErr, postRes.firstErr)
	}
	if res.ok.Load() < switches {
		t.Errorf("only %d requests succeeded; the load did not overlap the switches", res.ok.Load())
	}
	if a.hits.Load() == 0 || b.hits.Load() == 0 {
		t.Errorf("hits a=%d b=%d, want both targets to have served", a.hits.Load(), b.hits.Load())
	}
}

func TestDrainLetsSlowRequestsFinish(t *testing.T) {
	r, front := MustRouter(t, Config{})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	MustDeploy(t, r, rc, a.addr())

	const n = 4
	type result struct {
		code int
		body string
		err  error
	}
	results := make(chan result, n)
	c := testClient()
	for i := 0; i < n; i++ {
		go func() {
			code, body, err := doGet(c, front, "app.localhost", "/slow?ms=300")
			results <- result{code, body, err}
		}()
	}
	waitFor(t, "slow requests in flight on a", 5*time.Second, func() bool { return a.hits.Load() == n })
	res := MustDeploy(t, r, rc, b.addr())
	if res.Drained != n || res.Cancelled != 0 {
		t.Errorf("switch result drained=%d cancelled=%d, want %d and 0", res.Drained, res.Cancelled, n)
	}
	for i := 0; i < n; i++ {
		got := <-results
		if got.err != nil || got.code != 200 || got.body != "a" {
			t.Errorf("slow request across the switch: %d %q %v, want 200 \"a\"", got.code, got.body, got.err)
		}
	}
}

func TestDrainTimeoutCancelsAndCounts(t *testing.T) {
	m := NewMetrics(nil)
	r, front := MustRouter(t, Config{Metrics: m})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	rc.DrainTimeout = 200 * time.Millisecond
	MustDeploy(t, r, rc, a.addr())

	done := make(chan int, 1)
	go func() {
		code, _, _ := doGet(testClient(), front, "app.localhost", "/hang")
		done <- code
	}()
	waitFor(t, "hanging request in flight", 5*time.Second, func() bool { return a.hits.Load() == 1 })
	res := MustDeploy(t, r, rc, b.addr())
	if res.Cancelled != 1 || res.Drained != 0 {
		t.Errorf("drained=%d cancelled=%d, want 0 and 1", res.Drained, res.Cancelled)
	}
	if res.DrainTime < rc.DrainTimeout {
		t.Errorf("drain took %s, want at least the drain timeout %s", res.DrainTime, rc.DrainTimeout)
	}
	if code := <-done; code != http.StatusServiceUnavailable {
		t.Errorf("cancelled request got %d, want 503", code)
	}
	if got := counterValue(t, m.cancelled.WithLabelValues("app/prod")); got != 1 {
		t.Errorf("cancelled counter = %v, want 1", got)
	}
}

func TestWebSocketSurvivesSwitch(t *testing.T) {
	r, front := MustRouter(t, Config{})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	MustDeploy(t, r, rc, a.addr())

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front.URL, "http")+"/ws", &websocket.DialOptions{Host: "app.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	exchange := func(msg string) {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		_, got, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read after %q: %v", msg, err)
		}
		if want := "a:" + msg; string(got) != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	exchange("before")

	deployed := make(chan *gantry.SwitchResult, 1)
	go func() {
		res, err := r.Deploy(context.Background(), rc, []string{b.addr()})
		if err != nil {
			t.Error(err)
		}
		deployed <- res
	}()
	waitFor(t, "switch to b", 10*time.Second, func() bool {
		_, body, _ := doGet(testClient(), front, "app.localhost", "/")
		return body == "b"
	})
	for _, m := range []string{"after-1", "after-2", "after-3"} {
		exchange(m)
	}
	select {
	case <-deployed:
		t.Fatal("Deploy returned while a WebSocket on the old target was still open")
	default:
	}
	if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-deployed:
		// The polling GETs above may add to Drained; the WebSocket is one.
		if res == nil || res.Drained < 1 || res.Cancelled != 0 {
			t.Errorf("switch result %+v, want the WebSocket drained and none cancelled", res)
		}
	case <-ctx.Done():
		t.Fatal("Deploy did not return after the WebSocket closed")
	}
}

func TestDeployValidation(t *testing.T) {
	r, _ := MustRouter(t, Config{})
	ok := fastRoute("app/x", "x.localhost")
	tests := []struct {
		name    string
		rc      gantry.Route
		targets []string
	}{
		{"no name", gantry.Route{Hosts: []string{"x.localhost"}}, []string{"127.0.0.1:1"}},
		{"no hosts", gantry.Route{Name: "x"}, []string{"127.0.0.1:1"}},
		{"bad host", fastRoute("x", "bad host"), []string{"127.0.0.1:1"}},
		{"host with port", fastRoute("x", "x.localhost:80"), []string{"127.0.0.1:1"}},
		{"no targets", ok, nil},
		{"target without port", ok, []string{"127.0.0.1"}},
		{"duplicate target", ok, []string{"127.0.0.1:1", "127.0.0.1:1"}},
		{"bad balance", func() gantry.Route { rc := ok; rc.Balance = "random"; return rc }(), []string{"127.0.0.1:1"}},
		{"bad prefix", func() gantry.Route { rc := ok; rc.PathPrefix = "api"; return rc }(), []string{"127.0.0.1:1"}},
	}
	for _, tt := range tests {
		_, err := r.Deploy(context.Background(), tt.rc, tt.targets)
		var ge *gantry.Error
		if !errors.As(err, &ge) || ge.Code != gantry.EINVALID {
			t.Errorf("%s: err %v, want code %s", tt.name, err, gantry.EINVALID)
		}
	}
}

// fakeClock is a settable clock for Config.Now.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestRollbackAfterStaleHealthRunsRound(t *testing.T) {
	clock := newFakeClock()
	r, front := MustRouter(t, Config{Now: clock.Now})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	// No background probe during the test: only the round's own.
	rc.Health.Interval = time.Hour
	rc.DeployTimeout = time.Second
	MustDeploy(t, r, rc, a.addr())
	MustDeploy(t, r, rc, b.addr())

	res, err := r.Rollback(context.Background(), "app/prod")
	if err != nil {
		t.Fatal(err)
	}
	if res.HealthRound != 0 {
		t.Errorf("rollback right after the switch ran a health round (%s)", res.HealthRound)
	}
	clock.Advance(3 * time.Hour) // past the window of 2 intervals + timeout
	b.status.Store(503)
	_, err = r.Rollback(context.Background(), "app/prod")
	if gantry.ErrorCode(err) != gantry.EUNAVAILABLE || !strings.Contains(gantry.ErrorMessage(err), "status 503") {
		t.Fatalf("rollback to a set last checked hours ago, now failing: %v; want a health round that fails with status 503", err)
	}
	if _, body := MustGet(t, testClient(), front, "app.localhost", "/"); body != "a" {
		t.Errorf("failed rollback changed the route: served %q, want \"a\"", body)
	}
	b.status.Store(0)
	clock.Advance(3 * time.Hour)
	res, err = r.Rollback(context.Background(), "app/prod")
	if err != nil {
		t.Fatal(err)
	}
	if res.HealthRound == 0 {
		t.Errorf("rollback to a stale set skipped the health round")
	}
	st, _ := r.Status(context.Background())
	if !st[0].SwitchedAt.Equal(clock.Now()) {
		t.Errorf("SwitchedAt = %s, want the injected clock's %s", st[0].SwitchedAt, clock.Now())
	}
}

func TestWebSocketCutAtDrainTimeout(t *testing.T) {
	r, front := MustRouter(t, Config{})
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	rc := fastRoute("app/prod", "app.localhost")
	rc.DrainTimeout = 200 * time.Millisecond
	MustDeploy(t, r, rc, a.addr())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(front.URL, "http")+"/ws", &websocket.DialOptions{Host: "app.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	res := MustDeploy(t, r, rc, b.addr())
	if res.Cancelled != 1 {
		t.Errorf("switch result %+v, want the open WebSocket cancelled at the drain timeout", res)
	}
	if _, _, err := ws.Read(ctx); err == nil {
		t.Errorf("WebSocket on the old target still open after the drain timeout")
	}
}
