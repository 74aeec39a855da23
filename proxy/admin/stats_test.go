package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/proxy"
	"github.com/gantry-dev/gantry/proxy/admin"
)

// fixedStatus is a recorder whose Status answers a given snapshot, to check
// that every field survives the trip through the API.
type fixedStatus struct {
	recorder
	st []gantry.RouteStatus
}

func (f *fixedStatus) Status(context.Context) ([]gantry.RouteStatus, error) { return f.st, nil }

func TestStatusCarriesTargetFigures(t *testing.T) {
	want := []gantry.RouteStatus{{
		Route: gantry.Route{Name: "shop/prod", Hosts: []string{"shop.localhost"}},
		Active: []gantry.TargetStatus{{
			Addr: "127.0.0.1:9001", Healthy: true, InFlight: 2,
			Requests: 200, Errors5xx: 25, LatencySum: 3 * time.Second, LatencyP99: 64 * time.Millisecond,
		}},
		Previous: []string{"127.0.0.1:9000"},
		Switches: 4,
	}}
	h := admin.Handler(&fixedStatus{st: want}, "", nil)
	c := admin.NewClient(MustServeUnix(t, h), "")
	defer c.Close()
	got, err := c.Status(context.Background())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Status:\ngot  %+v\nwant %+v", got, want)
	}

	// The wire names are part of the API: snake_case, durations in ns.
	base := MustServeTCP(t, h)
	resp, err := http.Get(base + admin.PathStatus)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw struct {
		Routes []struct {
			Active []map[string]any `json:"active"`
		} `json:"routes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Routes) != 1 || len(raw.Routes[0].Active) != 1 {
		t.Fatalf("GET %s: got %+v, want one route with one target", admin.PathStatus, raw)
	}
	fields := raw.Routes[0].Active[0]
	for k, v := range map[string]float64{"requests": 200, "errors_5xx": 25, "latency_sum": 3e9, "latency_p99": 64e6} {
		if fields[k] != v {
			t.Errorf("JSON field %s = %v, want %v", k, fields[k], v)
		}
	}
}

// TestRealRouterCountsThroughAPI reads the figures of the real router over
// the admin socket, as a control plane in another process does.
func TestRealRouterCountsThroughAPI(t *testing.T) {
	r := proxy.New(proxy.Config{})
	defer r.Close()
	front := httptest.NewServer(r)
	defer front.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/up" {
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "down")
	}))
	defer failing.Close()
	addr := strings.TrimPrefix(failing.URL, "http://")
	c := admin.NewClient(MustServeUnix(t, admin.Handler(r, "", nil)), "")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	route := gantry.Route{
		Name: "shop/test", Hosts: []string{"test.shop.localhost"},
		Health:        gantry.HealthCheck{Path: "/up", Interval: 50 * time.Millisecond, Timeout: time.Second},
		DeployTimeout: 10 * time.Second,
	}
	if _, err := c.Deploy(ctx, route, []string{addr}); err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	for range 4 {
		if code, _ := get(t, front.URL, "test.shop.localhost"); code != http.StatusServiceUnavailable {
			t.Fatalf("GET: got %d, want the upstream's 503", code)
		}
	}
	// The figures are recorded once the answer is sent.
	var ts gantry.TargetStatus
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		if len(st) == 1 && len(st[0].Active) == 1 {
			ts = st[0].Active[0]
		}
		if ts.Requests >= 4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ts.Requests != 4 || ts.Errors5xx != 4 || ts.LatencySum <= 0 || ts.LatencyP99 <= 0 {
		t.Errorf("target figures: got requests=%d errors_5xx=%d latency_sum=%s p99=%s, want 4, 4 and positive latencies",
			ts.Requests, ts.Errors5xx, ts.LatencySum, ts.LatencyP99)
	}
}
