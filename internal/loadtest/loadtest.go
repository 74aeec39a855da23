// Package loadtest is a bounded HTTP load client for tests and benchmarks:
// a few workers send requests until stopped (or a request budget is spent)
// and every non-2xx answer and transport error is counted and kept.
// It only ever targets the address it is given; callers use loopback.
package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Load is a running load.
type Load struct {
	OK     atomic.Int64
	Failed atomic.Int64

	mu       sync.Mutex
	failures []string
	bodies   map[string]int64
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Options shape a load.
type Options struct {
	URL     string
	Host    string // Host header
	Workers int
	// MaxRequests bounds the total; MaxDuration bounds the time. Both are
	// required so a load always stops by itself.
	MaxRequests int64
	MaxDuration time.Duration
	// CountBodies records how many answers carried each body, to see
	// which release answered.
	CountBodies bool
	// Dial opens the connections (default: net.Dialer), e.g. from a
	// network namespace of the test's.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Start begins sending requests.
func Start(o Options) *Load {
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = 1_000_000
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.MaxDuration)
	l := &Load{cancel: cancel, bodies: map[string]int64{}}
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.Workers, IdleConnTimeout: 30 * time.Second, DialContext: o.Dial},
	}
	var sent atomic.Int64
	for range o.Workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for ctx.Err() == nil && sent.Add(1) <= o.MaxRequests {
				l.one(ctx, client, o)
			}
		}()
	}
	return l
}

func (l *Load) one(ctx context.Context, client *http.Client, o Options) {
	req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, o.URL, nil)
	if o.Host != "" {
		req.Host = o.Host
	}
	resp, err := client.Do(req)
	if err != nil {
		l.fail(err.Error())
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch {
	case err != nil:
		l.fail("read body: " + err.Error())
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		l.fail(fmt.Sprintf("status %d: %.200s", resp.StatusCode, body))
	default:
		l.OK.Add(1)
		if o.CountBodies {
			l.mu.Lock()
			l.bodies[string(body)]++
			l.mu.Unlock()
		}
	}
}

func (l *Load) fail(msg string) {
	l.Failed.Add(1)
	l.mu.Lock()
	if len(l.failures) < 20 {
		l.failures = append(l.failures, msg)
	}
	l.mu.Unlock()
}

// Stop ends the load and waits for in-flight requests.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}

// Failures returns up to 20 failure descriptions.
func (l *Load) Failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}

// Bodies returns how many 2xx answers carried each body.
func (l *Load) Bodies() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int64, len(l.bodies))
	for k, v := range l.bodies {
		out[k] = v
	}
	return out
}
