package proxy

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry"
)

// pauseGate holds a paused route's requests in arrival order.
type pauseGate struct {
	writesOnly atomic.Bool

	mu       sync.Mutex
	queue    []*waiter
	released bool
}

type waiter struct {
	go_ chan struct{} // closed to let the request through
	ack chan struct{} // closed by the request once it has passed
}

type holdResult int

const (
	holdReleased holdResult = iota
	holdRejected            // queue full or pause timeout
	holdGone                // the client went away
)

// safeMethod: a writes-only pause lets these through.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

func (rt *route) enter(write bool) {
	rt.passing.Add(1)
	if write {
		rt.passingWrites.Add(1)
	}
}

func (rt *route) leave(write bool) {
	n, w := rt.passing.Add(-1), int64(1)
	if write {
		w = rt.passingWrites.Add(-1)
	}
	if (n == 0 || w == 0) && rt.pause.Load() != nil {
		rt.r.changed.notify()
	}
}

// settlePause waits, up to the drain timeout, until the requests a new pause
// did not hold have finished, so that the caller may restart the targets.
func (r *Router) settlePause(ctx context.Context, rt *route, writesOnly bool) {
	count := &rt.passing
	if writesOnly {
		count = &rt.passingWrites
	}
	timer := time.NewTimer(rt.cfg.Load().DrainTimeout)
	defer timer.Stop()
	for {
		ch := r.changed.wait()
		if count.Load() <= 0 {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-timer.C:
			r.log.Warn("pause: requests still running after the drain timeout", logKeyRoute, rt.name, "in_flight", count.Load())
			return
		}
	}
}

// hold waits for release, the timeout or the client, whichever comes first.
func (g *pauseGate) hold(ctx context.Context, limit int, timeout time.Duration) holdResult {
	g.mu.Lock()
	if g.released {
		g.mu.Unlock()
		return holdReleased
	}
	if len(g.queue) >= limit {
		g.mu.Unlock()
		return holdRejected
	}
	w := &waiter{go_: make(chan struct{}), ack: make(chan struct{})}
	g.queue = append(g.queue, w)
	g.mu.Unlock()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	res := holdReleased
	select {
	case <-w.go_:
		close(w.ack)
		return holdReleased
	case <-timer.C:
		res = holdRejected
	case <-ctx.Done():
		res = holdGone
	}
	if g.remove(w) {
		return res
	}
	// release already took w off the queue and waits for its ack.
	<-w.go_
	close(w.ack)
	return holdReleased
}

func (g *pauseGate) remove(w *waiter) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, q := range g.queue {
		if q == w {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			return true
		}
	}
	return false
}

// release lets the held requests through one at a time, each after the one
// before it has passed the gate, so they reach the targets in arrival order.
func (g *pauseGate) release() {
	g.mu.Lock()
	g.released = true
	q := g.queue
	g.queue = nil
	g.mu.Unlock()
	for _, w := range q {
		close(w.go_)
		<-w.ack
	}
}

// Pause holds the route's new requests (all of them, or only writes) until
// Resume, within the route's PauseQueue and PauseTimeout bounds. It returns
// once the requests already past the gate have finished (up to the drain
// timeout), so the caller can then restart the targets.
func (r *Router) Pause(ctx context.Context, name string, writesOnly bool) error {
	rt, err := r.liveRoute(name)
	if err != nil {
		return err
	}
	g := &pauseGate{}
	g.writesOnly.Store(writesOnly)
	if !rt.pause.CompareAndSwap(nil, g) {
		if cur := rt.pause.Load(); cur != nil {
			cur.writesOnly.Store(writesOnly)
		}
	}
	r.log.Info("route paused", logKeyRoute, name, "writes_only", writesOnly)
	r.notifyChange()
	r.settlePause(ctx, rt, writesOnly)
	return nil
}

// Resume releases the held requests in order and lets new ones through.
func (r *Router) Resume(ctx context.Context, name string) error {
	rt, err := r.liveRoute(name)
	if err != nil {
		return err
	}
	if g := rt.pause.Swap(nil); g != nil {
		// A pause usually covers a restart of the targets, so pooled
		// connections to them may be dead; a request sent on one would fail
		// without being retryable.
		r.transport.CloseIdleConnections()
		g.release()
		r.log.Info("route resumed", logKeyRoute, name)
	}
	r.notifyChange()
	return nil
}

// Maintenance turns the route's maintenance page on or off. The router's
// HealthPath keeps answering meanwhile.
func (r *Router) Maintenance(ctx context.Context, name string, on bool, message string) error {
	rt, err := r.liveRoute(name)
	if err != nil {
		return err
	}
	if len(message) > 4096 {
		return gantry.Errorf(gantry.EINVALID, "maintenance message is %d bytes; the limit is 4096", len(message))
	}
	if on {
		rt.maint.Store(&maintenance{message: message})
	} else {
		rt.maint.Store(nil)
	}
	r.log.Info("route maintenance", logKeyRoute, name, "on", on)
	r.notifyChange()
	return nil
}
