package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry/internal/httplimit"
)

// attempt is one try of a request on one target; the reverse proxy's hooks
// find it in the outbound request's context.
type attempt struct {
	target *target
	// retryable: a refused connection is recorded in err instead of being
	// answered, so the caller can try another instance.
	retryable bool
	body      *onceBody // nil when the request has no body
	err       error
}

type attemptKey struct{}

func (r *Router) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport: r.transport,
		// Streamed responses (SSE, unknown length) are flushed at every
		// write by ReverseProxy itself; a response of known length goes out
		// in one write instead of one per chunk plus a flush.
		FlushInterval: 0,
		Rewrite: func(pr *httputil.ProxyRequest) {
			a := pr.Out.Context().Value(attemptKey{}).(*attempt)
			pr.SetURL(a.target.url)
			// The upstream sees the host the client asked for; apps build
			// links and pick tenants from it.
			pr.Out.Host = pr.In.Host
			// Rewrite strips inbound X-Forwarded-*; the forwarded middleware
			// has already set the values the router vouches for.
			// So has the request ID: both are restored even when the
			// client named them in Connection (hop-by-hop, so dropped).
			for _, k := range routerFields {
				if v, ok := pr.In.Header[k]; ok {
					pr.Out.Header[k] = v
				}
			}
		},
		ErrorHandler: r.proxyError,
		BufferPool:   bufferPool{},
		ErrorLog:     slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
}

// maxTries: a request goes to at most two instances.
const maxTries = 2

// serveProxy forwards the request to a target of the route's active (or
// preview) set. A connection refused before anything was sent is retried
// once on another instance, which is safe only while the body is unread.
func (r *Router) serveProxy(w http.ResponseWriter, req *http.Request) {
	rs := requestStateFrom(req.Context())
	rt := rs.route
	set, lane := rt.laneFor(w, req, rs.preview)
	start := time.Now()
	if g := rt.metrics.inflight; g != nil {
		g.Inc()
		defer g.Dec()
	}
	sw := &rs.sw
	*sw = statusWriter{ResponseWriter: w}
	if lane != nil {
		defer lane.record(sw, start)
	}
	var body *onceBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &onceBody{ReadCloser: req.Body}
		req.Body = body
	}
	var tried *target
	var lastErr error
	for try := 0; try < maxTries; try++ {
		t := acquire(set, rs.balance, tried)
		if t == nil {
			break
		}
		a := &rs.attempts[try]
		*a = attempt{target: t, retryable: try == 0, body: body}
		r.forwardSettled(sw, req, t, a, rt, start)
		t.done()
		if a.err == nil {
			r.observe(rt, t, sw.code, start)
			return
		}
		tried, lastErr = t, a.err
		// Let the health check confirm soon, rather than at its interval,
		// so a dead instance leaves the rotation quickly.
		t.probeNow()
		r.log.Info("upstream refused the connection", logKeyRoute, rt.name, logKeyTarget, t.addr)
	}
	if lastErr != nil {
		r.log.Warn("upstream unavailable", logKeyRoute, rt.name, "error", lastErr)
		plainError(sw, http.StatusBadGateway, "upstream unavailable")
	} else {
		plainError(sw, http.StatusServiceUnavailable, "no targets for this route")
	}
	r.observe(rt, tried, sw.code, start)
}

// forwardSettled runs one attempt and, when the forwarding aborts the
// handler (a response cut off mid-body panics with http.ErrAbortHandler),
// settles the target's in-flight count and the route's figures before the
// panic goes on to net/http, which closes the client's connection.
func (r *Router) forwardSettled(w *statusWriter, req *http.Request, t *target, a *attempt, rt *route, start time.Time) {
	defer func() {
		if p := recover(); p != nil {
			t.done()
			r.observe(rt, t, w.finalCode(), start)
			panic(p)
		}
	}()
	r.forward(w, req, t, a)
}

// forward runs one attempt: on the fast path (fastpath.go) when it can
// carry the request, else through the reverse proxy. The request's context
// is also cancelled if the target's drain times out, which ends even an
// upgraded connection.
func (r *Router) forward(w http.ResponseWriter, req *http.Request, t *target, a *attempt) {
	if !r.legacyForward && fastEligible(req) {
		r.forwardFast(w, req, t, a)
		return
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	stop := context.AfterFunc(t.drainCtx.Load().ctx, func() { cancel(errDrainTimeout) })
	defer stop()
	r.rp.ServeHTTP(w, req.WithContext(context.WithValue(ctx, attemptKey{}, a)))
}

func (r *Router) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	a := req.Context().Value(attemptKey{}).(*attempt)
	r.answerError(w, a, err, errors.Is(context.Cause(req.Context()), errDrainTimeout), req.Context().Err() != nil)
}

// answerError answers an attempt that failed before the response's head
// reached the client; drained: the target's drain timed out; gone: the
// client went away.
func (r *Router) answerError(w http.ResponseWriter, a *attempt, err error, drained, gone bool) {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case a.retryable && errors.Is(err, syscall.ECONNREFUSED) && (a.body == nil || !a.body.read.Load()):
		a.err = err
	case errors.As(err, &mbe):
		bodyTooLarge(w, mbe.Limit)
	case errors.Is(err, httplimit.ErrBodyTooSlow):
		w.Header().Set("Connection", "close")
		plainError(w, http.StatusRequestTimeout, "request body arrived too slowly")
	case drained:
		plainError(w, http.StatusServiceUnavailable, "request cancelled: the instance was switched out and its drain timed out")
	case gone:
		// The client went away; nobody reads an answer. 499 is for metrics.
		w.WriteHeader(499)
	case errors.As(err, &ne) && ne.Timeout():
		r.log.Warn("upstream timeout", logKeyTarget, a.target.addr, "error", err)
		plainError(w, http.StatusGatewayTimeout, "upstream timed out")
	default:
		r.log.Warn("upstream error", logKeyTarget, a.target.addr, "error", err)
		plainError(w, http.StatusBadGateway, "upstream error")
	}
}

func (r *Router) observe(rt *route, t *target, code int, start time.Time) {
	d := time.Since(start)
	if rt.metrics.latency != nil {
		rt.metrics.latency.Observe(d.Seconds())
	}
	if t != nil {
		t.stats.record(code, d)
	}
	if t != nil && t.metrics.byClass[0] != nil {
		c := code / 100
		if c < 1 || c > 5 {
			c = 0
		}
		t.metrics.byClass[c].Inc()
	}
}

// copyBuffers spares each proxied response a 32 KiB allocation.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

type bufferPool struct{}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }

// onceBody lets a refused attempt be retried: the transport closes a request
// body even when it never read it, so Close is deferred to the server, and
// read records whether any byte may have been consumed.
type onceBody struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *onceBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

func (b *onceBody) Close() error { return nil }

// statusWriter records the status for metrics. Unwrap lets
// http.ResponseController reach Flush and Hijack (for WebSocket upgrades).
type statusWriter struct {
	http.ResponseWriter
	code int
}

// finalCode is the status the client got; a handler aborted before any
// status counts as a 502, as the router answered it.
func (w *statusWriter) finalCode() int {
	if w.code == 0 {
		return http.StatusBadGateway
	}
	return w.code
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 || w.code >= 100 && w.code < 200 && w.code != http.StatusSwitchingProtocols {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
