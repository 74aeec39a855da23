package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry"
)

// newHealthClient probes without keep-alive, so a restarted backend is seen
// as it is now rather than through a stale pooled connection, and without
// following redirects, so a 3xx is judged by its own status.
func newHealthClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// startChecker runs t's health loop until its stop function is called.
func (r *Router) startChecker(rt *route, t *target) {
	ctx, cancel := context.WithCancel(context.Background())
	t.stop = cancel
	if r.stopping.Load() {
		cancel()
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		timer := time.NewTimer(0)
		defer timer.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			case <-t.kick:
				if !timer.Stop() {
					select {
					case <-timer.C:
					default:
					}
				}
			}
			hc := *t.hc.Load()
			err := r.probe(ctx, t.addr, hc)
			if ctx.Err() != nil {
				return
			}
			r.recordProbe(rt, t, hc, err)
			// The fast path's idle connections have no goroutine of
			// their own to notice a timeout; the checker's round does.
			if err != nil {
				t.conns.closeIdle(false)
			} else {
				t.conns.closeIdleBefore(time.Now().Add(-upstreamIdleTimeout))
			}
			timer.Reset(hc.Interval)
		}
	}()
}

func (r *Router) recordProbe(rt *route, t *target, hc gantry.HealthCheck, err error) {
	now := r.now()
	t.mu.Lock()
	t.lastCheck = now
	was := t.healthy.Load()
	if err == nil {
		t.lastOK = now
		t.lastErr = ""
		t.successes++
		t.failures = 0
		if !was && t.successes >= hc.HealthyAfter {
			t.healthy.Store(true)
		}
	} else {
		t.lastErr = err.Error()
		t.failures++
		t.successes = 0
		if was && t.failures >= hc.UnhealthyAfter {
			t.healthy.Store(false)
		}
	}
	is := t.healthy.Load()
	t.mu.Unlock()
	if t.metrics.health != nil {
		if is {
			t.metrics.health.Set(1)
		} else {
			t.metrics.health.Set(0)
		}
	}
	if was != is {
		r.log.Info("target health changed", logKeyRoute, rt.name, logKeyTarget, t.addr, "healthy", is, "error", t.lastError())
	}
	r.changed.notify()
}

// probe checks one target once: GET hc.Path expecting a status in range, or
// a TCP connect when no path is set. Errors are short and say how it failed.
func (r *Router) probe(ctx context.Context, addr string, hc gantry.HealthCheck) error {
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	if hc.Path == "" {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return describeProbeError(err)
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+hc.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "gantry-proxy-health")
	resp, err := r.healthClient.Do(req)
	if err != nil {
		return describeProbeError(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < hc.StatusMin || resp.StatusCode > hc.StatusMax {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func describeProbeError(err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return errors.New("connection refused")
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return errors.New("timeout")
	case errors.Is(err, syscall.ECONNRESET):
		return errors.New("connection reset")
	}
	return err
}

// broadcaster wakes every waiter on each notify; waiters re-check their
// condition, so a missed wake-up cannot happen if they take the channel
// before checking.
type broadcaster struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcaster() *broadcaster { return &broadcaster{ch: make(chan struct{})} }

func (b *broadcaster) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcaster) notify() {
	b.mu.Lock()
	close(b.ch)
	b.ch = make(chan struct{})
	b.mu.Unlock()
}
