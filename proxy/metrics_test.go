package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	r, front := MustRouter(t, Config{Metrics: m})
	a := MustBackend(t, "a")
	rc := fastRoute("app/prod", "app.localhost")
	MustDeploy(t, r, rc, a.addr())
	c := testClient()
	for i := 0; i < 3; i++ {
		MustGet(t, c, front, "app.localhost", "/")
	}
	MustGet(t, c, front, "app.localhost", "/missing-is-still-200-on-backend")
	// The count is taken after the response is sent, so the client may see
	// the answer a moment before the counter moves.
	ok := m.requests.WithLabelValues("app/prod", a.addr(), "2xx")
	waitFor(t, "4 requests counted", 5*time.Second, func() bool { return counterValue(t, ok) >= 4 })
	if got := counterValue(t, ok); got != 4 {
		t.Errorf("2xx requests = %v, want 4", got)
	}
	if got := counterValue(t, m.switches.WithLabelValues("app/prod")); got != 1 {
		t.Errorf("switches = %v, want 1", got)
	}
	var hm dto.Metric
	_ = m.health.WithLabelValues("app/prod", a.addr()).Write(&hm)
	if hm.GetGauge().GetValue() != 1 {
		t.Errorf("target health gauge = %v, want 1", hm.GetGauge().GetValue())
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	for _, n := range []string{"gantry_proxy_requests_total", "gantry_proxy_request_duration_seconds", "gantry_proxy_in_flight_requests", "gantry_proxy_switches_total", "gantry_proxy_target_healthy"} {
		if !names[n] {
			t.Errorf("metric %s not gathered", n)
		}
	}
	if err := r.RemoveRoute(context.Background(), "app/prod"); err != nil {
		t.Fatal(err)
	}
	fams, _ = reg.Gather()
	for _, f := range fams {
		if len(f.GetMetric()) != 0 && f.GetName() != "gantry_proxy_drained_requests_total" {
			t.Errorf("metric %s still has series after the route was removed", f.GetName())
		}
	}
}
