package proxy

import (
	"context"
	"errors"
	"time"
)

// errDrainTimeout is the cancellation cause of requests still running on a
// retired target when its drain times out.
var errDrainTimeout = errors.New("drain timeout")

// settleTimeout bounds the wait for cancelled requests to unwind, so a
// handler that ignores its context cannot hold a deploy forever.
const settleTimeout = 2 * time.Second

// drain waits until no request runs on the retired targets, up to timeout;
// then it cancels what still runs. A target that became active again (a
// rollback during the drain) is no longer retired and is left alone.
// Upgraded connections count as requests: they stay open until they close
// or the drain times out.
func (r *Router) drain(ctx context.Context, rt *route, retired []*target, timeout time.Duration) (drained, cancelled int64, took time.Duration) {
	start := r.now()
	defer func() { took = r.now().Sub(start) }()
	var n0 int64
	for _, t := range retired {
		n0 += t.inflight.Load()
	}
	if n0 == 0 {
		return 0, 0, 0
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := r.changed.wait()
		rem := remaining(retired)
		if rem == 0 {
			r.countDrain(rt, n0, 0)
			return n0, 0, 0
		}
		select {
		case <-ch:
		case <-ctx.Done():
			// The caller gave up waiting; the requests keep running.
			drained = max(n0-rem, 0)
			r.countDrain(rt, drained, 0)
			return drained, 0, 0
		case <-deadline.C:
			for _, t := range retired {
				if t.retired.Load() && t.inflight.Load() > 0 {
					t.drainCtx.Swap(newDrainScope()).end(errDrainTimeout)
				}
			}
			r.log.Warn("drain timed out, cancelled requests", logKeyRoute, rt.name, "cancelled", rem)
			r.settle(retired)
			drained = max(n0-rem, 0)
			r.countDrain(rt, drained, rem)
			return drained, rem, 0
		}
	}
}

// settle waits, bounded, for cancelled requests to return.
func (r *Router) settle(retired []*target) {
	t := time.NewTimer(settleTimeout)
	defer t.Stop()
	for {
		ch := r.changed.wait()
		if remaining(retired) == 0 {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

func remaining(retired []*target) int64 {
	var n int64
	for _, t := range retired {
		if t.retired.Load() {
			n += t.inflight.Load()
		}
	}
	return n
}

func (r *Router) countDrain(rt *route, drained, cancelled int64) {
	if m := r.cfg.Metrics; m != nil {
		m.drained.WithLabelValues(rt.name).Add(float64(drained))
		m.cancelled.WithLabelValues(rt.name).Add(float64(cancelled))
	}
}
