package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// statusOf returns the router's view of addr on the route, failing the test
// when it is not an active target.
func statusOf(tb testing.TB, r *Router, route, addr string) gantry.TargetStatus {
	tb.Helper()
	sts, err := r.Status(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	for _, rs := range sts {
		if rs.Route.Name != route {
			continue
		}
		for _, ts := range rs.Active {
			if ts.Addr == addr {
				return ts
			}
		}
	}
	tb.Fatalf("%s is not an active target of %s", addr, route)
	return gantry.TargetStatus{}
}

func TestTargetCountsRequestsErrorsAndLatency(t *testing.T) {
	// /fail answers 500, /slow?ms=N waits N ms, anything else 200.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "/slow":
			ms, _ := strconv.Atoi(req.URL.Query().Get("ms"))
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		_, _ = io.WriteString(w, "x")
	}))
	defer up.Close()
	addr := up.Listener.Addr().String()
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app/prod", "app.localhost"), addr)
	c := testClient()
	want := map[string]int{"/": 5, "/fail": 3, "/slow?ms=60": 2}
	for path, n := range want {
		for range n {
			MustGet(t, c, front, "app.localhost", path)
		}
	}
	// The count is taken after the answer is sent.
	waitFor(t, "10 requests counted", 5*time.Second, func() bool {
		return statusOf(t, r, "app/prod", addr).Requests >= 10
	})
	ts := statusOf(t, r, "app/prod", addr)
	if ts.Requests != 10 {
		t.Errorf("Requests = %d, want 10", ts.Requests)
	}
	if ts.Errors5xx != 3 {
		t.Errorf("Errors5xx = %d, want 3", ts.Errors5xx)
	}
	if ts.LatencySum < 120*time.Millisecond {
		t.Errorf("LatencySum = %s, want at least the two 60ms requests", ts.LatencySum)
	}
	// The p99 of 10 requests is the slowest one; the estimate rounds up.
	if ts.LatencyP99 < 60*time.Millisecond {
		t.Errorf("LatencyP99 = %s, want >= 60ms", ts.LatencyP99)
	}

	// A release that crashes answers nothing: the router's own 502 counts
	// against it, or a watch would see a dead release as a quiet one.
	dead := MustBackend(t, "dead")
	MustDeploy(t, r, fastRoute("app/test", "test.localhost"), dead.addr())
	dead.srv.Close()
	if code, _ := MustGet(t, c, front, "test.localhost", "/"); code != http.StatusBadGateway {
		t.Fatalf("dead upstream: got %d, want 502", code)
	}
	waitFor(t, "the 502 counted", 5*time.Second, func() bool {
		return statusOf(t, r, "app/test", dead.addr()).Requests >= 1
	})
	if ts := statusOf(t, r, "app/test", dead.addr()); ts.Requests != 1 || ts.Errors5xx != 1 {
		t.Errorf("dead target: requests=%d errors_5xx=%d, want 1 and 1", ts.Requests, ts.Errors5xx)
	}
}

func TestLatencyQuantile(t *testing.T) {
	tests := []struct {
		name string
		obs  []time.Duration
		q    float64
		want time.Duration
	}{
		{"nothing recorded", nil, 0.99, 0},
		{"one value rounds up to its bucket's bound", []time.Duration{3 * time.Millisecond}, 0.99, 4096 * time.Microsecond},
		{"sub-microsecond", []time.Duration{100 * time.Nanosecond}, 0.5, time.Microsecond},
		{"p99 of 99 fast and 1 slow is fast", append(repeat(time.Millisecond, 99), time.Second), 0.99, 1024 * time.Microsecond},
		{"p99 of 98 fast and 2 slow is slow", append(repeat(time.Millisecond, 98), time.Second, time.Second), 0.99, 1 << 20 * time.Microsecond},
		{"longer than the last bucket", []time.Duration{time.Hour}, 0.99, 1 << 31 * time.Microsecond},
	}
	for _, tt := range tests {
		var s targetStats
		for _, d := range tt.obs {
			s.record(200, d)
		}
		if got := s.quantile(tt.q); got != tt.want {
			t.Errorf("%s: quantile(%v) = %s, want %s", tt.name, tt.q, got, tt.want)
		}
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// TestRecordDoesNotAllocate guards the hot path: every proxied request
// records its figures.
func TestRecordDoesNotAllocate(t *testing.T) {
	var s targetStats
	if n := testing.AllocsPerRun(1000, func() { s.record(503, 7*time.Millisecond) }); n != 0 {
		t.Errorf("record allocates %v times per call, want 0", n)
	}
	if got := s.errors5xx.Load(); got != s.requests.Load() || got == 0 {
		t.Errorf("errors5xx = %d, requests = %d; want equal and non-zero", got, s.requests.Load())
	}
}

// BenchmarkRecord measures what each proxied request pays for the figures,
// from all CPUs at once on one target, as under load.
func BenchmarkRecord(b *testing.B) {
	var s targetStats
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.record(200, 3*time.Millisecond)
		}
	})
}
