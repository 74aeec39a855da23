package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/httplimit"
)

// Attribute keys for log lines.
const (
	logKeyRoute  = "route"
	logKeyTarget = "target"
)

// Router defaults.
const (
	defaultMaxBodyBytes          = 64 << 20
	defaultResponseHeaderTimeout = 60 * time.Second
)

// Config configures a Router. The zero value is usable.
type Config struct {
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now
	// MaxBodyBytes is the default for routes without their own; 0 => 64 MiB.
	MaxBodyBytes int64
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers (504 past it); 0 => 60s. On the fast path a pooled
	// connection's deadline is re-armed once in a sixteenth of it, so the
	// 504 comes between the timeout and a sixteenth more.
	ResponseHeaderTimeout time.Duration
	Metrics               *Metrics // nil: no metrics
	// OnChange is called (outside locks) after every state change, so the
	// caller can persist Snapshot().
	OnChange func()
	// HealthPath is a path the router itself answers 200 on, for every host
	// and even in maintenance, so a load balancer in front can check it.
	HealthPath string
}

// Router is the in-process traffic router. It is an http.Handler for the
// data plane and a gantry.Router for the control plane.
type Router struct {
	cfg          Config
	log          *slog.Logger
	now          func() time.Time
	transport    *http.Transport
	rp           *httputil.ReverseProxy
	handler      http.Handler
	healthClient *http.Client
	// legacyForward sends every request through rp; benchmarks set it to
	// compare the fast path with the reverse proxy.
	legacyForward bool

	// changed wakes health rounds and drains: a probe finished, or the last
	// request on a retired target ended.
	changed *broadcaster

	notifyMu sync.Mutex // serialises OnChange

	mu     sync.Mutex // guards routes and table rebuilds
	routes map[string]*route
	table  atomic.Pointer[routeTable]
	closed bool
	// stopping is closed's lock-free twin, for starting checkers while a
	// route lock is held.
	stopping atomic.Bool

	wg sync.WaitGroup // health checkers
}

var _ gantry.Router = (*Router)(nil)

// New returns a Router with no routes.
func New(cfg Config) *Router {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = defaultMaxBodyBytes
	}
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = defaultResponseHeaderTimeout
	}
	r := &Router{
		cfg:          cfg,
		log:          cfg.Logger,
		now:          cfg.Now,
		healthClient: newHealthClient(),
		changed:      newBroadcaster(),
		routes:       map[string]*route{},
	}
	r.table.Store(emptyTable())
	r.transport = &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
	}
	r.rp = r.newReverseProxy()
	r.handler = WithRequestIDMiddleware(WithForwardedMiddleware(WithGateMiddleware(WithBodyLimitMiddleware(http.HandlerFunc(r.serveProxy)))))
	return r
}

// NewServer wraps h in an http.Server with the limits a public listener
// needs (zero fields take httplimit's defaults): header and idle timeouts,
// and a minimum rate for request bodies, so that slow clients cannot hold
// connections while uploads that progress, streamed responses, SSE and
// upgraded connections are never cut (there is no WriteTimeout).
func NewServer(h http.Handler, limits httplimit.Limits) *http.Server {
	return limits.Server(h)
}

// ServeHTTP routes one request.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if hp := r.cfg.HealthPath; hp != "" && req.URL.Path == hp {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "OK\n")
		return
	}
	e, st := r.table.Load().lookup(req.Host, req.URL.Path)
	switch st {
	case lookupBadHost:
		plainError(w, http.StatusBadRequest, "bad Host header")
		return
	case lookupNoRoute:
		plainError(w, http.StatusNotFound, "no route for this host")
		return
	}
	cfg := e.rt.cfg.Load()
	if cfg.RedirectHTTPS && req.TLS == nil {
		// The host passed lookup's validation, so it is safe to repeat.
		http.Redirect(w, req, "https://"+req.Host+req.URL.RequestURI(), http.StatusPermanentRedirect)
		return
	}
	limit := cfg.MaxBodyBytes
	if limit <= 0 {
		limit = r.cfg.MaxBodyBytes
	}
	state := requestState{Context: req.Context(), route: e.rt, preview: e.preview, maxBody: limit, balance: cfg.Balance}
	if x, ok := state.Context.(*reqCtx); ok && !x.hasState {
		// Served by the loop: the state lives in the request's own
		// context, and the request goes on as it is, not copied.
		x.state, x.hasState = state, true
		r.handler.ServeHTTP(w, req)
		return
	}
	rs := new(requestState)
	*rs = state
	r.handler.ServeHTTP(w, req.WithContext(rs))
}

// Lookup returns the name of the route serving host and path.
func (r *Router) Lookup(host, path string) (routeName string, ok bool) {
	e, st := r.table.Load().lookup(host, path)
	if st != lookupFound {
		return "", false
	}
	return e.rt.name, true
}

// Close stops the health checkers. In-flight requests are not affected.
func (r *Router) Close() error {
	r.mu.Lock()
	r.closed = true
	r.stopping.Store(true)
	for _, rt := range r.routes {
		rt.stopAll()
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.transport.CloseIdleConnections()
	return nil
}

// requestState is what the router resolved for a request; middleware finds
// it in the request context (requestStateFrom). It is that context itself
// (or, for a request the loop serves, part of that context, its reqCtx),
// and holds serveProxy's status writer and attempts, so that a request
// allocates one object for all of them.
type requestState struct {
	context.Context // the request's own
	route           *route
	preview         bool
	maxBody         int64
	balance         string

	sw       statusWriter
	attempts [maxTries]attempt
}

type requestStateKey struct{}

// AfterFunc lets the contexts derived from a request's, and
// context.AfterFunc on it, wait on the request's own context (the loop's
// reqCtx, or net/http's) without a goroutine each.
func (rs *requestState) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(rs.Context, f)
}

func (rs *requestState) Value(key any) any {
	if key == (requestStateKey{}) {
		return rs
	}
	return rs.Context.Value(key)
}

func requestStateFrom(ctx context.Context) *requestState {
	rs, _ := ctx.Value(requestStateKey{}).(*requestState)
	return rs
}

// plainError writes a short plain-text error; msg is never user input.
func plainError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}

// notifyChange calls OnChange one call at a time, so a caller that saves
// Snapshot() each time cannot overwrite a newer save with an older one.
func (r *Router) notifyChange() {
	if r.cfg.OnChange != nil {
		r.notifyMu.Lock()
		defer r.notifyMu.Unlock()
		r.cfg.OnChange()
	}
}
