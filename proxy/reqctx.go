package proxy

import (
	"context"
	"sync"
	"sync/atomic"
)

// reqCtx is the context of a request the loop serves: the connection's
// values (c.base, never cancelled), cancelled when the handler returns or
// the client leaves. It costs one allocation where context.WithCancel
// costs three (the context, its cancel func and, once asked for, its Done
// channel) and a walk of the values for a parent to register with: Done's
// channel is made only when asked for, which the fast path never does.
type reqCtx struct {
	context.Context
	done      atomic.Pointer[chan struct{}]
	cancelled atomic.Bool
	mu        sync.Mutex
	after     map[*afterFunc]struct{} // AfterFunc's, until cancel runs them
	// state is what the router resolved for the request (Router.ServeHTTP),
	// kept here rather than in a context of its own, so that the request
	// is not copied to carry it.
	state    requestState
	hasState bool
}

// Value answers requestStateKey with the router's state of the request,
// other keys from the connection's context.
func (x *reqCtx) Value(key any) any {
	if key == (requestStateKey{}) {
		if x.hasState {
			return &x.state
		}
		return nil
	}
	return x.Context.Value(key)
}

// afterFunc is one AfterFunc of a reqCtx.
type afterFunc struct{ f func() }

// closedChan is the Done of a reqCtx cancelled before Done was asked for.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func newReqCtx(base context.Context) *reqCtx { return &reqCtx{Context: base} }

// Done returns a channel closed once the request is cancelled.
func (x *reqCtx) Done() <-chan struct{} {
	if d := x.done.Load(); d != nil {
		return *d
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if d := x.done.Load(); d != nil {
		return *d
	}
	d := closedChan
	if !x.cancelled.Load() {
		d = make(chan struct{})
	}
	x.done.Store(&d)
	return d
}

// Err is context.Canceled once the request is cancelled, else nil.
func (x *reqCtx) Err() error {
	if x.cancelled.Load() {
		return context.Canceled
	}
	return nil
}

// cancel cancels the request: Done's channel closes and each AfterFunc
// runs in its own goroutine, as context's do. Later calls do nothing.
func (x *reqCtx) cancel() {
	x.mu.Lock()
	if x.cancelled.Load() {
		x.mu.Unlock()
		return
	}
	x.cancelled.Store(true)
	if d := x.done.Load(); d != nil {
		close(*d)
	}
	after := x.after
	x.after = nil
	x.mu.Unlock()
	for a := range after {
		go a.f()
	}
}

// AfterFunc arranges for f to run once the request is cancelled (at once,
// in its own goroutine, if it already is); stop undoes it and says whether
// it did. context.AfterFunc and the contexts derived from this one use it,
// so that none of them needs a goroutine of its own to wait on Done.
func (x *reqCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	x.mu.Lock()
	if x.cancelled.Load() {
		x.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if x.after == nil {
		x.after = make(map[*afterFunc]struct{})
	}
	x.after[a] = struct{}{}
	x.mu.Unlock()
	return func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		_, ok := x.after[a]
		delete(x.after, a)
		return ok
	}
}

// ownCtx is the reqCtx that ctx is, as the handler got it (or a
// requestState around it), or nil for any context derived from it.
func ownCtx(ctx context.Context) *reqCtx {
	if rs, ok := ctx.(*requestState); ok {
		ctx = rs.Context
	}
	x, _ := ctx.(*reqCtx)
	return x
}
