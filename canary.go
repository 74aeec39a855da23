package gantry

import (
	"context"
	"time"
)

// StrategyCanary starts the candidate like blue-green, then moves traffic
// to it in steps (a share of requests each), judging each step on the
// router's own figures before the final switch.
const StrategyCanary = "canary"

// CanarySpec is environments.<env>.canary in the manifest.
type CanarySpec struct {
	Steps []CanaryStep `json:"steps"`
	// Sticky bounds how long a client keeps the release it was given (its
	// cookie's lifetime), through the canary and after the final switch.
	Sticky time.Duration `json:"sticky"`
	// Match sends the requests it matches to the candidate at any weight
	// (testers), 0% included. Nil: no such rule.
	Match *CanaryMatch `json:"match,omitempty"`
	// MinRequests is how many requests each slot must have served in a step
	// before it is judged; with fewer the step is extended.
	MinRequests int `json:"min_requests"`
	// MaxExtensions bounds how often a step is extended for want of
	// traffic; then OnInconclusive decides ("fail" or "pass").
	MaxExtensions  int    `json:"max_extensions"`
	OnInconclusive string `json:"on_inconclusive"`
	// LatencyMs and LatencyPercent are the tolerance of the latency test:
	// the candidate fails only when it is slower by more than both.
	LatencyMs      float64 `json:"latency_ms"`
	LatencyPercent float64 `json:"latency_percent"`
	// ErrorRate is the tolerance of the error test: the candidate fails
	// only when its 5xx share exceeds the stable one by more than this.
	ErrorRate float64 `json:"error_rate"`
}

// CanaryStep is one step: a weight (percent of the requests without a
// cookie that go to the candidate) held for a duration or a number of
// requests (whichever is given; both: the later of the two).
type CanaryStep struct {
	Weight   int           `json:"weight"`
	Duration time.Duration `json:"duration,omitempty"`
	Requests int           `json:"requests,omitempty"`
}

// CanaryMatch is a targeted rule: a request whose header (or cookie) Name
// has Value (any value when Value is empty) goes to the candidate.
type CanaryMatch struct {
	Header string `json:"header,omitempty"`
	Cookie string `json:"cookie,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Canary defaults, applied by the manifest decoder.
const (
	DefaultCanarySticky        = 10 * time.Minute
	DefaultCanaryMinRequests   = 50
	DefaultCanaryMaxExtensions = 3
	DefaultCanaryLatencyMs     = 10
	DefaultCanaryLatencyPct    = 10
	DefaultCanaryErrorRate     = 0.01
	CanaryOnInconclusiveFail   = "fail"
	CanaryOnInconclusivePass   = "pass"
)

// CanarySplit is what the router is told for one step of a canary: the
// candidate's targets, the share of requests they get, and how clients
// stick to a release.
type CanarySplit struct {
	Candidate []string `json:"candidate"`
	// Weight is the percent (0–100) of requests without a release cookie
	// that go to the candidate.
	Weight int `json:"weight"`
	// Step numbers the step; the router's figures start again when it
	// changes.
	Step int `json:"step"`
	// StableRelease and CandidateRelease label the two sides in the
	// release cookie (release versions, say).
	StableRelease    string        `json:"stable_release"`
	CandidateRelease string        `json:"candidate_release"`
	Sticky           time.Duration `json:"sticky"`
	Match            *CanaryMatch  `json:"match,omitempty"`
}

// SlotFigures are a side's figures over the current step.
type SlotFigures struct {
	Requests  int64 `json:"requests"`
	Errors5xx int64 `json:"errors_5xx"`
	// Targeted counts the requests a match rule sent; they are not in
	// Requests, so testers do not bias the comparison.
	Targeted int64 `json:"targeted,omitempty"`
	// LatencyMicros is a uniform sample of the step's latencies (at most
	// a few thousand), in microseconds, for the rank test.
	LatencyMicros []int64       `json:"latency_micros,omitempty"`
	P50           time.Duration `json:"p50"`
	P99           time.Duration `json:"p99"`
}

// CanaryStatus is a route's split as the router runs it, with the figures
// of the current step.
type CanaryStatus struct {
	Route     string      `json:"route"`
	Split     CanarySplit `json:"split"`
	Since     time.Time   `json:"since"`
	Stable    SlotFigures `json:"stable"`
	Candidate SlotFigures `json:"candidate"`
}

// CanaryRouter is the optional ability of a router to split a route's
// traffic between its active set and a candidate. The engine finds it by
// type assertion; a runtime that routes its own traffic has none.
type CanaryRouter interface {
	// SetCanary starts or changes the split of route name. New candidate
	// targets must pass their health check first, as for a switch.
	SetCanary(ctx context.Context, name string, split CanarySplit) error
	// ClearCanary ends the split at once: every request goes to the active
	// set again, and requests still running on the candidate are drained.
	ClearCanary(ctx context.Context, name string) error
	// CanaryStatus reports the split and its figures; ENOTFOUND when the
	// route has none.
	CanaryStatus(ctx context.Context, name string) (*CanaryStatus, error)
}

// CanaryVerdict is the judgment of one canary step, with its figures (the
// latency samples left out).
type CanaryVerdict struct {
	Step       int         `json:"step"`
	Weight     int         `json:"weight"`
	Verdict    string      `json:"verdict"` // pass, fail, extended, promoted, aborted
	Reason     string      `json:"reason"`
	Extensions int         `json:"extensions,omitempty"`
	Stable     SlotFigures `json:"stable"`
	Candidate  SlotFigures `json:"candidate"`
	At         time.Time   `json:"at"`
}

// CanaryReport is what `gantry canary status` shows: the running canary
// of an environment, its steps, the verdicts so far and the live figures
// of the current step.
type CanaryReport struct {
	App          string          `json:"app"`
	Env          string          `json:"env"`
	DeploymentID int64           `json:"deployment_id"`
	Stable       string          `json:"stable"`    // slot:version
	Candidate    string          `json:"candidate"` // slot:version
	Steps        []CanaryStep    `json:"steps"`
	Step         int             `json:"step"` // 1-based; 0 before the first
	Weight       int             `json:"weight"`
	Verdicts     []CanaryVerdict `json:"verdicts"`
	Live         *CanaryVerdict  `json:"live,omitempty"`
}

// WithoutSample drops the latency sample, which is for the judge only.
func (f SlotFigures) WithoutSample() SlotFigures {
	f.LatencyMicros = nil
	return f
}
