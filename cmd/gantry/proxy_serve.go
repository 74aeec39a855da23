package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gantry-dev/gantry/proxy"
)

// servedHTTP is one http.Server on one listener, stopped so that no request
// fails: http.Server.Shutdown alone drops a connection that was accepted
// but whose first request had not been read yet (the client sees EOF on a
// fresh connection, which it does not retry). So stop closes the listener
// first, waits for the fresh connections to show a request, and only then
// shuts the server down.
type servedHTTP struct {
	name string
	ln   net.Listener
	srv  httpServer
	tls  bool
	done chan error

	mu    sync.Mutex
	fresh map[net.Conn]struct{}
}

// httpServer is an *http.Server, or a *proxy.Server (the router's own
// HTTP/1.1 loop on plain listeners, net/http for TLS).
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// netHTTP is the http.Server behind srv: its fields (ConnState, ErrorLog,
// TLSConfig) configure both kinds, and it serves TLS.
func netHTTP(srv httpServer) *http.Server {
	if ps, ok := srv.(*proxy.Server); ok {
		return ps.Server
	}
	return srv.(*http.Server)
}

// serveHTTP starts srv on ln (with TLS from srv.TLSConfig when tls is set).
// The server's own errors (failed handshakes, handler panics) go to log.
func serveHTTP(log *slog.Logger, name string, ln net.Listener, hs httpServer, tls bool) *servedHTTP {
	srv := netHTTP(hs)
	if srv.ErrorLog == nil {
		srv.ErrorLog = slog.NewLogLogger(log.With("listener", name).Handler(), slog.LevelWarn)
	}
	s := &servedHTTP{name: name, ln: ln, srv: hs, tls: tls, done: make(chan error, 1), fresh: map[net.Conn]struct{}{}}
	hook := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		s.mu.Lock()
		if st == http.StateNew {
			s.fresh[c] = struct{}{}
		} else {
			delete(s.fresh, c)
		}
		s.mu.Unlock()
		if hook != nil {
			hook(c, st)
		}
	}
	go func() {
		var err error
		if tls {
			err = srv.ServeTLS(ln, "", "")
		} else {
			err = hs.Serve(ln)
		}
		s.done <- err
	}()
	return s
}

func (s *servedHTTP) freshConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fresh)
}

// freshGrace bounds the wait for a fresh connection's first request: a
// client that connected ahead of need may never send one.
const freshGrace = 2 * time.Second

// stop stops accepting, lets in-flight requests finish until ctx ends, and
// then closes what is left.
func (s *servedHTTP) stop(ctx context.Context) error {
	if ul, ok := s.ln.(*net.UnixListener); ok {
		// The socket file belongs to whoever serves next (a takeover
		// child); the caller removes it on a final stop.
		ul.SetUnlinkOnClose(false)
	}
	s.ln.Close()
	deadline := time.Now().Add(freshGrace)
	for s.freshConns() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	if serveErr := <-s.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && !errors.Is(serveErr, net.ErrClosed) && err == nil {
		err = serveErr
	}
	return err
}
