package proxy

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry/internal/httplimit"
)

// Server serves plain (non-TLS) listeners with the router's own HTTP/1.1
// connection loop (serverconn.go) and hands whatever that loop does not
// carry to net/http on the same connection, with the bytes already read:
// upgrades (WebSocket), CONNECT, Expect: 100-continue, chunked or otherwise
// unusual request framing, HTTP/1.0, heads over the loop's buffer (net/http
// then answers 431 or 400 as before) and anything it would reject. TLS
// (and so HTTP/2) is served by the embedded http.Server, whose fields
// (Handler, ConnState, ErrorLog, TLSConfig) the loop honours too.
type Server struct {
	*http.Server
	limits httplimit.Limits

	mu        sync.Mutex
	listeners map[*net.Listener]struct{}
	conns     map[*serverConn]struct{}
	shutting  atomic.Bool

	requests atomic.Uint64 // started, on the loop and on net/http
	quiet    quietRelease
}

// NewLoopServer is NewServer (same handler chain and limits) with the
// router's own HTTP/1.1 loop on plain listeners.
func NewLoopServer(h http.Handler, limits httplimit.Limits) *Server {
	s := &Server{
		limits:    limits.WithDefaults(),
		listeners: map[*net.Listener]struct{}{},
		conns:     map[*serverConn]struct{}{},
	}
	// Every request is counted, on the loop and on net/http (TLS, and the
	// connections handed over): the memory goes back only once none comes.
	s.Server = NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, req)
	}), limits)
	return s
}

// Serve accepts connections on ln and serves each on the loop. It returns
// http.ErrServerClosed after Shutdown or Close, else the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	if !s.trackListener(&ln, true) {
		return http.ErrServerClosed
	}
	defer s.trackListener(&ln, false)
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutting.Load() {
				return http.ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of descriptors and the like: wait, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logf("router: accept error: %v; retrying in %v", err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := newServerConn(s, nc)
		if !s.trackConn(c, true) {
			_ = nc.Close()
			return http.ErrServerClosed
		}
		s.connState(nc, http.StateNew)
		go c.serve()
	}
}

func (s *Server) trackListener(ln *net.Listener, add bool) bool {
	return track(s, s.listeners, ln, add)
}

func (s *Server) trackConn(c *serverConn, add bool) bool { return track(s, s.conns, c, add) }

// track adds k to one of the server's books, m, or removes it; an
// addition fails once the server shuts down.
func track[K comparable](s *Server, m map[K]struct{}, k K, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(m, k)
		return true
	}
	if s.shutting.Load() {
		return false
	}
	m[k] = struct{}{}
	return true
}

func (s *Server) connState(nc net.Conn, st http.ConnState) {
	if h := s.ConnState; h != nil {
		h(nc, st)
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
		return
	}
	log.Printf(format, args...)
}

// Memory after a burst. The Go runtime keeps the heap a burst grew to (its
// collector lets garbage reach the size of the live heap before it runs)
// and gives freed memory back to the system slowly; a process that has gone
// idle allocates nothing and so runs neither. Two thousand connections
// opened at once and then left idle held about 12 KB of resident memory
// each, twice what they use (bench/README.md). So once connections have
// parked (idle past bufferHold, their buffers given back) and no request
// has started for quietAfter, the server collects and returns
// the free memory to the system: at most once per releaseEvery, and never
// while requests keep coming.
const (
	quietAfter   = 500 * time.Millisecond
	releaseEvery = 10 * time.Second
)

type quietRelease struct {
	mu    sync.Mutex
	timer *time.Timer
	armed bool
	seen  uint64    // requests when the timer was last armed
	last  time.Time // the last release
	count atomic.Int64
}

// parked notes that a connection parked: memory is to go back once quiet.
func (s *Server) parked() {
	q := &s.quiet
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.armed || s.shutting.Load() {
		return
	}
	q.armed = true
	q.seen = s.requests.Load()
	wait := max(quietAfter, time.Until(q.last.Add(releaseEvery)))
	if q.timer == nil {
		q.timer = time.AfterFunc(wait, s.releaseIfQuiet)
		return
	}
	q.timer.Reset(wait)
}

// releaseIfQuiet returns free memory to the system if no request started
// since the timer was armed, else waits quietAfter more.
func (s *Server) releaseIfQuiet() {
	q := &s.quiet
	q.mu.Lock()
	if !q.armed || s.shutting.Load() {
		q.mu.Unlock()
		return
	}
	if n := s.requests.Load(); n != q.seen {
		q.seen = n
		q.timer.Reset(quietAfter)
		q.mu.Unlock()
		return
	}
	q.armed = false
	q.last = time.Now()
	q.count.Add(1)
	q.mu.Unlock()
	// Two collections: the first moves what sync.Pool holds (the read
	// buffers parked connections gave back) to its victim cache, the
	// second frees it; FreeOSMemory runs the second and returns the
	// free pages.
	runtime.GC()
	debug.FreeOSMemory()
}

// closeListeners closes the listeners and marks the server shutting down.
func (s *Server) closeListeners() error {
	s.shutting.Store(true) // before the timer stops: parked arms no other
	s.quiet.mu.Lock()
	if s.quiet.timer != nil {
		s.quiet.timer.Stop()
	}
	s.quiet.armed = false
	s.quiet.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutting.Store(true)
	var err error
	for ln := range s.listeners {
		if cerr := (*ln).Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	return err
}

// freshGrace is how long Shutdown leaves a connection that has not sent a
// request yet, as net/http does: its request may be on the way.
const freshGrace = 5 * time.Second

// closeIdle closes the loop's connections that wait for a request (fresh
// ones past freshGrace) and says whether none is left.
func (s *Server) closeIdle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.closeIfIdle(time.Now().Add(-freshGrace))
	}
	return len(s.conns) == 0
}

// Shutdown stops accepting, lets the requests in flight finish (on the loop
// and on net/http), closes connections as they go idle, and returns when
// none is left or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	lnErr := s.closeListeners()
	httpErr := make(chan error, 1)
	go func() { httpErr <- s.Server.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.closeIdle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if err := <-httpErr; err != nil {
		return err
	}
	return lnErr
}

// Close closes the listeners and every connection at once.
func (s *Server) Close() error {
	err := s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	if herr := s.Server.Close(); err == nil {
		err = herr
	}
	return err
}

// handOver serves nc on net/http from here on; pre holds the bytes the loop
// read and did not use. The connection leaves the loop's books (hijacked,
// for ConnState's followers) and enters net/http's as a new one.
func (s *Server) handOver(nc net.Conn, pre []byte) {
	pc := &prefixConn{Conn: nc, pre: pre}
	s.connState(nc, http.StateHijacked)
	l := &oneConnListener{c: pc}
	_ = s.Server.Serve(l)
	if !l.taken {
		// net/http is shutting down and did not take it.
		_ = nc.Close()
	}
}

// prefixConn reads pre before the connection's own bytes.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close the connection before it closes it
// (after a 431, or an answer that leaves a request body unread), so that
// the client reads the answer instead of a reset; net/http finds it only
// on the connection it was given.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// errHandedOver ends the http.Server.Serve that took one connection; the
// connection goes on being served.
var errHandedOver = errors.New("connection handed over")

// oneConnListener gives http.Server.Serve one connection, then an error.
type oneConnListener struct {
	c     net.Conn
	taken bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if l.taken {
		return nil, errHandedOver
	}
	l.taken = true
	return l.c, nil
}

func (l *oneConnListener) Close() error   { return nil }
func (l *oneConnListener) Addr() net.Addr { return l.c.LocalAddr() }
