package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func TestProbe(t *testing.T) {
	r := New(Config{})
	defer r.Close()
	good, bad := MustBackend(t, "good"), MustBackend(t, "bad")
	bad.status.Store(503)
	redirect := MustBackend(t, "redirect")
	redirect.status.Store(302)
	dead := refusedAddr(t)
	hc := func(path string, min, max int) gantry.HealthCheck {
		return gantry.HealthCheck{Path: path, StatusMin: min, StatusMax: max, Timeout: 2 * time.Second}.WithDefaults()
	}
	tests := []struct {
		name    string
		addr    string
		hc      gantry.HealthCheck
		wantErr string
	}{
		{"http ok", good.addr(), hc("/up", 0, 0), ""},
		{"http 503", bad.addr(), hc("/up", 0, 0), "status 503"},
		{"3xx is healthy by default", redirect.addr(), hc("/up", 0, 0), ""},
		{"3xx outside a narrowed range", redirect.addr(), hc("/up", 200, 299), "status 302"},
		{"http refused", dead, hc("/up", 0, 0), "connection refused"},
		{"tcp ok", good.addr(), hc("", 0, 0), ""},
		{"tcp refused", dead, hc("", 0, 0), "connection refused"},
	}
	for _, tt := range tests {
		err := r.probe(context.Background(), tt.addr, tt.hc)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr {
			t.Errorf("%s: probe error %q, want %q", tt.name, got, tt.wantErr)
		}
	}
}

// TestHealthDefaults: a route's health check gets gantry's one set of
// defaults; the status range is an HTTP check's only.
func TestHealthDefaults(t *testing.T) {
	for _, tt := range []struct{ in, want gantry.HealthCheck }{
		{gantry.HealthCheck{}, gantry.HealthCheck{Interval: time.Second, Timeout: 2 * time.Second, HealthyAfter: 1, UnhealthyAfter: 2}},
		{gantry.HealthCheck{Path: "/up"}, gantry.HealthCheck{Path: "/up", StatusMin: 200, StatusMax: 399, Interval: time.Second, Timeout: 2 * time.Second, HealthyAfter: 1, UnhealthyAfter: 2}},
	} {
		rc, err := withRouteDefaults(gantry.Route{Name: "shop/test", Hosts: []string{"shop.localhost"}, Health: tt.in})
		if err != nil {
			t.Fatal(err)
		}
		if rc.Health != tt.want {
			t.Errorf("defaults of %+v = %+v, want %+v", tt.in, rc.Health, tt.want)
		}
	}
}
