package proxy

import (
	"bufio"
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Upstream connection pool of the fast path (fastpath.go): each target keeps
// its own idle HTTP/1.1 keep-alive connections, newest first, each with its
// own read buffer. No goroutine runs per connection; a request uses one from
// its handler's goroutine and puts it back when the response has been read.
const (
	maxIdlePerTarget    = 1024
	upstreamIdleTimeout = 90 * time.Second
	upstreamReadBuffer  = 4 << 10
)

var upstreamDialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

// aLongTimeAgo is a deadline in the past: setting it unblocks any read or
// write on the connection at once.
var aLongTimeAgo = time.Unix(1, 0)

// upConn is one connection to a target.
type upConn struct {
	nc     net.Conn
	raw    syscall.RawConn // nil when the connection has none
	io     rawIO
	br     *bufio.Reader // reads through Read
	reused bool          // it served a request before
	idleAt time.Time     // when it went back to the pool
	headBy time.Time     // the read deadline armHeadDeadline set; zero: none
	// aborted is set when the client left or the target's drain timed out;
	// the connection is then unusable and is closed, never pooled.
	aborted atomic.Bool
	abortFn func() // abort, allocated once per connection
}

func dialUpstream(ctx context.Context, addr string) (*upConn, error) {
	nc, err := upstreamDialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	uc := &upConn{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		uc.raw, _ = sc.SyscallConn()
	}
	uc.io.init(uc.raw)
	uc.br = bufio.NewReaderSize(uc, upstreamReadBuffer)
	uc.abortFn = uc.abort
	return uc, nil
}

// abort makes every pending and later read or write fail at once.
func (uc *upConn) abort() {
	uc.aborted.Store(true)
	_ = uc.nc.SetDeadline(aLongTimeAgo)
}

func (uc *upConn) close() { _ = uc.nc.Close() }

// Read reads from the connection (for br).
func (uc *upConn) Read(p []byte) (int, error) { return uc.io.read(uc.nc, p) }

// connPool holds a target's idle connections.
type connPool struct {
	mu     sync.Mutex
	idle   []*upConn // oldest first
	closed bool
}

// get returns an idle connection, or nil when there is none. When check is
// set (a request that must not be sent twice), a connection the target has
// closed while it was idle is dropped rather than returned; other requests
// find out by a failed first read and are sent again on a fresh connection.
func (p *connPool) get(now time.Time, check bool) *upConn {
	for {
		p.mu.Lock()
		n := len(p.idle)
		if n == 0 {
			p.mu.Unlock()
			return nil
		}
		uc := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		var stale []*upConn
		if now.Sub(uc.idleAt) > upstreamIdleTimeout {
			// Every connection below this one has been idle longer.
			stale = append(p.idle, uc)
			p.idle = nil
		}
		p.mu.Unlock()
		if stale != nil {
			for _, s := range stale {
				s.close()
			}
			return nil
		}
		if !check || uc.alive() {
			return uc
		}
		uc.close()
	}
}

// put returns a connection whose last response was read to its end.
func (p *connPool) put(uc *upConn, now time.Time) {
	uc.reused = true
	uc.idleAt = now
	p.mu.Lock()
	if p.closed || len(p.idle) >= maxIdlePerTarget {
		p.mu.Unlock()
		uc.close()
		return
	}
	p.idle = append(p.idle, uc)
	p.mu.Unlock()
}

// closeIdleBefore closes the connections idle since before cutoff.
func (p *connPool) closeIdleBefore(cutoff time.Time) {
	p.mu.Lock()
	n := 0
	for n < len(p.idle) && p.idle[n].idleAt.Before(cutoff) {
		n++
	}
	old := slices.Clone(p.idle[:n])
	p.idle = slices.Delete(p.idle, 0, n)
	p.mu.Unlock()
	for _, uc := range old {
		uc.close()
	}
}

// closeIdle closes the idle connections; with forever, connections put back
// later are closed too (the target left the route).
func (p *connPool) closeIdle(forever bool) {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if forever {
		p.closed = true
	}
	p.mu.Unlock()
	for _, uc := range idle {
		uc.close()
	}
}
