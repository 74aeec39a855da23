package proxy

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/prometheus/client_golang/prometheus"
)

// target is one upstream host:port of a route. A route keeps one target per
// address across its active, previous and preview sets, so health knowledge
// survives a switch and a rollback needs no new health round.
type target struct {
	addr string
	url  *url.URL

	inflight atomic.Int64
	healthy  atomic.Bool
	// retired is set while the target is being drained after a switch left
	// it; the last request to finish on a retired target wakes the drainer.
	retired atomic.Bool
	// drainCtx is cancelled when a drain times out, which cancels the
	// requests still running on the target.
	drainCtx atomic.Pointer[drainScope]

	hc    atomic.Pointer[gantry.HealthCheck]
	kick  chan struct{}
	stop  context.CancelFunc
	onIdl func()

	mu        sync.Mutex
	lastCheck time.Time
	lastOK    time.Time
	lastErr   string
	successes int
	failures  int

	metrics targetMetrics
	stats   targetStats
	conns   connPool // idle upstream connections of the fast path
}

type drainScope struct {
	ctx    context.Context
	cancel context.CancelCauseFunc

	// The fast path's upstream connections in use, aborted when the
	// scope ends (cheaper per request than a context.AfterFunc).
	mu    sync.Mutex
	ended bool
	busy  map[*upConn]struct{}
}

// end cancels the scope's context with cause, then aborts the upstream
// connections it holds and any held later.
func (s *drainScope) end(cause error) {
	s.cancel(cause)
	s.mu.Lock()
	s.ended = true
	busy := s.busy
	s.busy = nil
	s.mu.Unlock()
	for uc := range busy {
		uc.abort()
	}
}

// hold has uc aborted when the scope ends (at once if it has).
func (s *drainScope) hold(uc *upConn) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		uc.abort()
		return
	}
	if s.busy == nil {
		s.busy = make(map[*upConn]struct{})
	}
	s.busy[uc] = struct{}{}
	s.mu.Unlock()
}

// release undoes hold; it says whether the scope had not aborted uc.
func (s *drainScope) release(uc *upConn) bool {
	s.mu.Lock()
	_, held := s.busy[uc]
	delete(s.busy, uc)
	s.mu.Unlock()
	return held
}

func newDrainScope() *drainScope {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &drainScope{ctx: ctx, cancel: cancel}
}

// targetMetrics are label children resolved once per target, so the hot path
// does no label hashing.
type targetMetrics struct {
	byClass [6]prometheus.Counter // index status/100; 0 means "error"
	health  prometheus.Gauge
}

func newTarget(addr string, hc gantry.HealthCheck, onIdle func()) *target {
	t := &target{
		addr:  addr,
		url:   &url.URL{Scheme: "http", Host: addr},
		kick:  make(chan struct{}, 1),
		onIdl: onIdle,
	}
	t.hc.Store(&hc)
	t.drainCtx.Store(newDrainScope())
	return t
}

// done ends a request (or an acquisition that lost a race with a switch).
func (t *target) done() {
	if t.inflight.Add(-1) == 0 && t.retired.Load() && t.onIdl != nil {
		t.onIdl()
	}
}

// healthyRecently says a rollback may skip its health round: the target
// passed a probe within the window of a few intervals.
func (t *target) healthyRecently(now time.Time) bool {
	if !t.healthy.Load() {
		return false
	}
	hc := t.hc.Load()
	window := 2*hc.Interval + hc.Timeout
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.lastOK.IsZero() && now.Sub(t.lastOK) <= window
}

// healthySince says the target is healthy on a probe made at or after start.
func (t *target) healthySince(start time.Time) bool {
	if !t.healthy.Load() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.lastOK.Before(start)
}

func (t *target) status() gantry.TargetStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return gantry.TargetStatus{
		Addr:      t.addr,
		Healthy:   t.healthy.Load(),
		InFlight:  t.inflight.Load(),
		LastCheck: t.lastCheck,
		LastError: t.lastErr,

		Requests:   t.stats.requests.Load(),
		Errors5xx:  t.stats.errors5xx.Load(),
		LatencySum: time.Duration(t.stats.latencyNs.Load()),
		LatencyP99: t.stats.quantile(0.99),
	}
}

func (t *target) lastError() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastErr == "" {
		return "not yet probed"
	}
	return t.lastErr
}

// probeNow asks the checker to probe without waiting for its interval.
func (t *target) probeNow() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}
