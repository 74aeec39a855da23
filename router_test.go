package gantry

import (
	"testing"
	"time"
)

func TestHealthCheckWithDefaults(t *testing.T) {
	for _, tt := range []struct {
		name     string
		in, want HealthCheck
	}{
		{"tcp", HealthCheck{}, HealthCheck{Interval: time.Second, Timeout: 2 * time.Second, HealthyAfter: 1, UnhealthyAfter: 2}},
		{"http", HealthCheck{Path: "/up"}, HealthCheck{Path: "/up", StatusMin: 200, StatusMax: 399, Interval: time.Second, Timeout: 2 * time.Second, HealthyAfter: 1, UnhealthyAfter: 2}},
		{"set fields stay", HealthCheck{Path: "/up", StatusMin: 200, StatusMax: 299, Interval: 5 * time.Second, Timeout: time.Second, HealthyAfter: 3, UnhealthyAfter: 4},
			HealthCheck{Path: "/up", StatusMin: 200, StatusMax: 299, Interval: 5 * time.Second, Timeout: time.Second, HealthyAfter: 3, UnhealthyAfter: 4}},
	} {
		if got := tt.in.WithDefaults(); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
