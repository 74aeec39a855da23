package gantry

import (
	"context"
	"time"
)

// HealthCheck says how a target proves it can take traffic.
type HealthCheck struct {
	// Path is the HTTP path probed with GET. Empty means a TCP connect check.
	Path string `json:"path,omitempty"`
	// StatusMin and StatusMax bound the accepted status codes (default 200..399).
	StatusMin int `json:"status_min,omitempty"`
	StatusMax int `json:"status_max,omitempty"`
	// Interval between probes, Timeout of one probe.
	Interval time.Duration `json:"interval,omitempty"`
	Timeout  time.Duration `json:"timeout,omitempty"`
	// HealthyAfter consecutive successes make a target healthy;
	// UnhealthyAfter consecutive failures take it out of rotation.
	HealthyAfter   int `json:"healthy_after,omitempty"`
	UnhealthyAfter int `json:"unhealthy_after,omitempty"`
}

// Health check defaults beyond the path, interval and timeout (manifest.go):
// one set, applied by WithDefaults wherever a check runs or is described.
const (
	DefaultHealthyAfter    = 1
	DefaultUnhealthyAfter  = 2
	DefaultHealthStatusMin = 200
	DefaultHealthStatusMax = 399
)

// WithDefaults fills the fields of a health check left at zero: the one
// home of the defaults that the manifest, the router, the orchestrator's
// own probes and the runtimes' probes (Kubernetes readiness) all apply.
// The accepted status range is an HTTP check's only: a TCP check (no Path)
// keeps none.
func (h HealthCheck) WithDefaults() HealthCheck {
	if h.Interval <= 0 {
		h.Interval = DefaultHealthPeriod
	}
	if h.Timeout <= 0 {
		h.Timeout = DefaultHealthWait
	}
	if h.HealthyAfter <= 0 {
		h.HealthyAfter = DefaultHealthyAfter
	}
	if h.UnhealthyAfter <= 0 {
		h.UnhealthyAfter = DefaultUnhealthyAfter
	}
	if h.Path != "" {
		if h.StatusMin <= 0 {
			h.StatusMin = DefaultHealthStatusMin
		}
		if h.StatusMax <= 0 {
			h.StatusMax = DefaultHealthStatusMax
		}
	}
	return h
}

// Route is the router's configuration for one named route. The control plane
// names routes "<app>/<env>".
type Route struct {
	Name string `json:"name"`
	// Hosts are exact names or "*.example.com" wildcards.
	Hosts []string `json:"hosts"`
	// PathPrefix, when set, restricts the route to request paths under it.
	PathPrefix string `json:"path_prefix,omitempty"`
	// PreviewHosts serve the preview target set, so a candidate can be checked
	// through the router before it takes traffic.
	PreviewHosts []string    `json:"preview_hosts,omitempty"`
	Health       HealthCheck `json:"health"`
	// DeployTimeout bounds the health round of a switch; DrainTimeout bounds
	// how long the old targets keep in-flight requests after it.
	DeployTimeout time.Duration `json:"deploy_timeout,omitempty"`
	DrainTimeout  time.Duration `json:"drain_timeout,omitempty"`
	// PauseTimeout and PauseQueue bound how long and how many requests a
	// paused route holds before answering 503 with Retry-After.
	PauseTimeout time.Duration `json:"pause_timeout,omitempty"`
	PauseQueue   int           `json:"pause_queue,omitempty"`
	// MaxBodyBytes is the largest request body accepted (413 past it); 0 is the router default.
	MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	// Balance is "least_inflight" (default) or "round_robin".
	Balance string `json:"balance,omitempty"`
	// RedirectHTTPS answers plain HTTP requests with a redirect to HTTPS.
	RedirectHTTPS bool `json:"redirect_https,omitempty"`
}

// TargetStatus is the router's view of one target.
type TargetStatus struct {
	Addr     string `json:"addr"`
	Healthy  bool   `json:"healthy"`
	InFlight int64  `json:"in_flight"`
	// LastCheck is when the target was last probed; LastError what failed.
	LastCheck time.Time `json:"last_check,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	// Requests and Errors5xx count the requests the target answered (or
	// failed to answer: a 502 for a dead instance counts) since the router
	// first knew its address. LatencySum is their total time, so the mean
	// over any interval is a difference of two snapshots; LatencyP99 is an
	// estimate over the same lifetime, to a factor of two.
	Requests   int64         `json:"requests"`
	Errors5xx  int64         `json:"errors_5xx"`
	LatencySum time.Duration `json:"latency_sum"`
	LatencyP99 time.Duration `json:"latency_p99"`
}

// RouteStatus is a route's configuration and live state.
type RouteStatus struct {
	Route       Route          `json:"route"`
	Active      []TargetStatus `json:"active"`
	Previous    []string       `json:"previous,omitempty"`
	Preview     []TargetStatus `json:"preview,omitempty"`
	Paused      bool           `json:"paused"`
	WritesOnly  bool           `json:"writes_only,omitempty"`
	Maintenance bool           `json:"maintenance"`
	SwitchedAt  time.Time      `json:"switched_at,omitempty"`
	Switches    int64          `json:"switches"`
	// Canary is, in a following router's report, the route's canary split
	// and the figures of its step as that router counted them.
	Canary *CanaryStatus `json:"canary,omitempty"`
}

// SwitchResult reports what a switch did.
type SwitchResult struct {
	Route string   `json:"route"`
	From  []string `json:"from,omitempty"`
	To    []string `json:"to"`
	// HealthRound is how long the new targets took to become healthy (zero
	// when a recent check made a new round unnecessary).
	HealthRound time.Duration `json:"health_round"`
	// Drained counts requests on the old targets that completed during the
	// drain; Cancelled counts those still running at the drain timeout.
	Drained   int64         `json:"drained"`
	Cancelled int64         `json:"cancelled"`
	DrainTime time.Duration `json:"drain_time"`
}

// Router is the control side of the traffic router. The in-process router
// (proxy.Router) and the client of a separate `gantry proxy` (proxy.Client)
// both satisfy it, so the control plane can restart without dropping traffic.
type Router interface {
	// Deploy creates or updates the route and switches it to targets once
	// every target is healthy; it returns after the old targets are drained.
	// If the targets do not become healthy in time nothing changes and the
	// error says which target failed and how.
	Deploy(ctx context.Context, route Route, targets []string) (*SwitchResult, error)
	// Rollback switches a route back to its previous target set.
	Rollback(ctx context.Context, name string) (*SwitchResult, error)
	// SetPreview sets (or, with no targets, clears) the preview target set.
	SetPreview(ctx context.Context, name string, targets []string) error
	Pause(ctx context.Context, name string, writesOnly bool) error
	Resume(ctx context.Context, name string) error
	Maintenance(ctx context.Context, name string, on bool, message string) error
	RemoveRoute(ctx context.Context, name string) error
	Status(ctx context.Context) ([]RouteStatus, error)
}
