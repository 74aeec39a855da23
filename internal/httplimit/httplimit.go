// Package httplimit bounds what a client may hold of a public HTTP
// listener (the router's and the API's): the time to send its headers,
// how slowly it may send a request body, how long an idle keep-alive
// connection stays open, and how large its headers may be.
//
// A body is bounded by a minimum rate, not a total time, so that a large
// upload that keeps moving is never cut; responses are never bounded (no
// WriteTimeout), so streamed responses, server-sent events and upgraded
// connections (WebSockets) last as long as their handler wants. The
// package must not know what the listener serves.
package httplimit

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

// Defaults of Limits, for public listeners on a busy machine.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultBodyTimeout       = 20 * time.Second
	DefaultBodyMinRate       = 1024 // bytes per second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Limits configures a listener's http.Server. Zero fields take the
// defaults above.
type Limits struct {
	// ReadHeaderTimeout bounds the time from a connection's (or a
	// keep-alive request's) start to the end of its request headers.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new request.
	IdleTimeout time.Duration
	// BodyTimeout and BodyMinRate bound a request body: in every period of
	// BodyTimeout it must deliver BodyMinRate×BodyTimeout bytes, or its end.
	// A client that falls behind has its connection closed.
	BodyTimeout time.Duration
	BodyMinRate int64
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
}

// WithDefaults fills the zero fields.
func (l Limits) WithDefaults() Limits {
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.BodyMinRate <= 0 {
		l.BodyMinRate = DefaultBodyMinRate
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// Server returns an http.Server serving h within l. There is no
// ReadTimeout (it is a total time, which a large upload may exceed) and no
// WriteTimeout (it would cut streamed responses).
func (l Limits) Server(h http.Handler) *http.Server {
	l = l.WithDefaults()
	return &http.Server{
		Handler:           WithBodyRateMiddleware(h, l.BodyTimeout, l.BodyMinRate),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// WithBodyRateMiddleware enforces a minimum rate on request bodies with
// the connection's read deadline: in every period of timeout the body must
// deliver minRate×timeout bytes or its end, else reading it fails and the
// server closes the connection. A handler that returns without reading the
// whole body leaves the server one more period to discard the rest.
// Requests without a body, WebSocket handshakes among them, are left
// alone; an upgrade request with a body is bounded like any other (else
// the header would let a slow client out of the limit), and its body has
// ended before the connection is handed over, which clears the deadline.
func WithBodyRateMiddleware(next http.Handler, timeout time.Duration, minRate int64) http.Handler {
	if timeout <= 0 || minRate <= 0 {
		return next
	}
	quota := max(int64(float64(minRate)*timeout.Seconds()), 1)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Body == nil || req.Body == http.NoBody {
			next.ServeHTTP(w, req)
			return
		}
		rr := &rateReader{body: req.Body, rc: http.NewResponseController(w), timeout: timeout, quota: quota}
		req.Body = rr
		defer rr.handlerDone()
		next.ServeHTTP(w, req)
	})
}

// rateReader moves the connection's read deadline forward each time the
// body delivers its quota. It never touches the deadline once the body has
// ended or failed: at the end of a body the server clears the deadline
// itself for its background read, and a deadline set after that would
// cancel a request whose response is still streaming.
type rateReader struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	quota   int64

	mu       sync.Mutex
	started  bool // a deadline is set
	finished bool // the body ended or failed, or the handler returned
	got      int64
	deadline time.Time
}

func (r *rateReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	if !r.finished && !r.started {
		r.started = true
		r.arm(time.Now())
	}
	r.mu.Unlock()
	n, err := r.body.Read(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return n, err
	}
	if err != nil {
		r.finished = true
		if isTimeout(err) {
			return n, ErrBodyTooSlow
		}
		return n, err
	}
	if r.got += int64(n); r.got >= r.quota {
		r.got = 0
		r.arm(time.Now())
	}
	return n, nil
}

// Close closes the body; the server does this for the handler.
func (r *rateReader) Close() error {
	return r.body.Close()
}

// arm sets the deadline of the current period. The ResponseController may
// refuse (a recorder in tests): the body is then unbounded, as before.
func (r *rateReader) arm(now time.Time) {
	r.deadline = now.Add(r.timeout)
	_ = r.rc.SetReadDeadline(r.deadline)
}

// handlerDone stops the reader from touching the connection, which the
// server may reuse for the next request. A body the handler did not read
// to its end gets a deadline for the server's discard of the rest.
func (r *rateReader) handlerDone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.finished && !r.started {
		r.arm(time.Now())
	}
	r.finished = true
}

// ErrBodyTooSlow is what a handler reads from a body that fell below the
// rate; the connection is closed after the handler's answer.
var ErrBodyTooSlow = errors.New("request body arrived too slowly")

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
