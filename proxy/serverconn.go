package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The loop's connection: one goroutine per connection reads a request head
// into a small buffer, parses what routing and framing need into an
// http.Request (the header map, URL and value slices reused from request to
// request), runs the handler with its own ResponseWriter (serverwriter.go),
// and writes the answer in as few writes as it can. No goroutine runs per
// request; a connection idle for longer than bufferHold gives its buffer
// back and waits for readability without one, so an idle connection costs
// its goroutine and little else.

const (
	// connBufferSize is the read buffer; a head that does not fit goes to
	// net/http, which applies MaxHeaderBytes.
	connBufferSize = 4 << 10
	// bufferHold is how long a connection waiting for its next request
	// keeps its buffer.
	bufferHold = 250 * time.Millisecond
	// maxDiscard is the most of an unread request body the loop reads
	// past to keep the connection; more and it is closed (as net/http).
	maxDiscard = 256 << 10
	// watchDelay: a handler still running after it has the connection
	// watched for the client leaving, which cancels the request's context
	// (net/http watches from the start, with a goroutine per request).
	watchDelay = 20 * time.Millisecond
)

var readBuffers = sync.Pool{New: func() any { b := make([]byte, connBufferSize); return &b }}

// Phases of a connection, for Shutdown.
const (
	phaseNew     = iota // accepted, no request yet
	phaseIdle           // waiting for the next request
	phaseActive         // reading or serving a request
	phaseClosing        // Shutdown closed it while idle
)

type serverConn struct {
	s      *Server
	nc     net.Conn
	raw    syscall.RawConn // nil when the connection has none
	io     rawIO
	remote string
	born   time.Time
	base   context.Context
	phase  atomic.Int32

	rb *[]byte // read buffer; nil while idle past bufferHold
	// parked: the connection has been idle past bufferHold and waits, on
	// a fresh goroutine with a small stack, for bytes until until.
	parked bool
	until  time.Time
	hasRB  atomic.Bool // rb != nil, for tests
	hasST  atomic.Bool // st != nil, for tests
	r, w   int         // unread bytes are (*rb)[r:w]

	// What serving requests needs; nil while parked (see reqState).
	st *reqState

	// The watch of the request in flight (see watchDelay).
	watch     *time.Timer
	wmu       sync.Mutex
	cur       *reqCtx // the request in flight's context; nil between requests
	body      *bodyReader
	nextReady bool          // the next request's bytes are here already
	watchDone chan struct{} // the watcher's end; nil when none runs
	gone      bool          // the client left during the request in flight
	up        *upConn       // the fast path's upstream connection, aborted if it does
}

// loopConnKey is the context key of the serverConn that serves a request.
type loopConnKey struct{}

type headField struct{ k, v string }

// reqState is the request being parsed, its header's map, values and URL,
// and the answer's writer: reused from request to request (the handler
// gets a copy of the request, with its context). A connection parked idle
// drops it, with everything its last request left in it, and makes a new
// one for its next request: an idle connection keeps only serverConn.
type reqState struct {
	req    http.Request
	hdr    http.Header
	vals   []string
	fields []headField
	url    url.URL
	rw     responseWriter
}

// state returns the connection's reqState, made if it has none.
func (c *serverConn) state() *reqState {
	if c.st == nil {
		c.st = &reqState{rw: responseWriter{c: c}}
		c.hasST.Store(true)
	}
	return c.st
}

func newServerConn(s *Server, nc net.Conn) *serverConn {
	c := &serverConn{s: s, nc: nc, remote: nc.RemoteAddr().String(), born: time.Now()}
	if sc, ok := nc.(syscall.Conn); ok && canWaitReadable {
		c.raw, _ = sc.SyscallConn()
	}
	c.io.init(c.raw)
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.Server)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, nc.LocalAddr())
	c.base = context.WithValue(ctx, loopConnKey{}, c)
	return c
}

// closeIfIdle closes the connection if it waits for a request, or has not
// sent its first since before fresh.
func (c *serverConn) closeIfIdle(fresh time.Time) {
	if c.phase.CompareAndSwap(phaseIdle, phaseClosing) || c.born.Before(fresh) && c.phase.CompareAndSwap(phaseNew, phaseClosing) {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// activate moves the connection to phaseActive, unless Shutdown closed it.
func (c *serverConn) activate() bool {
	for {
		p := c.phase.Load()
		if p == phaseClosing {
			return false
		}
		if p == phaseActive || c.phase.CompareAndSwap(p, phaseActive) {
			c.s.connState(c.nc, http.StateActive)
			return true
		}
	}
}

func (c *serverConn) serve() {
	handedOver, parked := false, false
	defer func() {
		if p := recover(); p != nil {
			c.s.logf("router: panic serving %s: %v\n%s", c.remote, p, stack())
		}
		if parked || handedOver {
			return // served on: by a new goroutine, or by net/http
		}
		c.s.trackConn(c, false)
		_ = c.nc.Close()
		c.putBuffer()
		c.s.connState(c.nc, http.StateClosed)
	}()
	for {
		n, res := c.nextHead()
		switch res {
		case headClose:
			return
		case headPark:
			// The stack this goroutine grew serving requests is given
			// back; a new one waits with the starting stack.
			parked = true
			go c.serve()
			return
		}
		var req *http.Request
		if n > 0 {
			req = c.parse((*c.rb)[c.r : c.r+n])
		}
		if req == nil {
			// Not for the loop: net/http reads it again from the start.
			handedOver = true
			c.s.trackConn(c, false)
			pre := (*c.rb)[c.r:c.w]
			c.rb = nil
			c.s.handOver(c.nc, pre)
			return
		}
		c.r += n
		if !c.serveRequest(req) {
			return
		}
		if c.r == c.w {
			c.r, c.w = 0, 0
		}
		c.phase.Store(phaseIdle)
		c.s.connState(c.nc, http.StateIdle)
		if c.s.shutting.Load() {
			return
		}
	}
}

func stack() []byte {
	buf := make([]byte, 64<<10)
	return buf[:runtime.Stack(buf, false)]
}

func (c *serverConn) getBuffer() {
	if c.rb == nil {
		c.rb = readBuffers.Get().(*[]byte)
		c.r, c.w = 0, 0
		c.hasRB.Store(true)
	}
}

// buffered says the connection holds a read buffer.
func (c *serverConn) buffered() bool { return c.hasRB.Load() }

func (c *serverConn) putBuffer() {
	if c.rb != nil {
		readBuffers.Put(c.rb)
		c.rb = nil
		c.hasRB.Store(false)
	}
}

// Results of nextHead.
const (
	headOK    = iota // a head, or (n == 0) a connection to hand over
	headClose        // timeout, client gone, shutdown
	headPark         // idle past bufferHold: wait on a new goroutine
)

// nextHead reads until (*rb)[r:r+n] holds a whole request head. n == 0
// with headOK: hand the connection over (the head does not fit, or its
// line endings are not CRLF).
func (c *serverConn) nextHead() (n, res int) {
	if c.r == c.w {
		if res := c.awaitRequest(); res != headOK {
			return 0, res
		}
	}
	if !c.activate() {
		return 0, headClose
	}
	headerDeadline := false
	for {
		b := (*c.rb)[c.r:c.w]
		if i := bytes.Index(b, crlfcrlf); i >= 0 {
			if hasBareCRorLF(b[:i]) {
				return 0, headOK
			}
			return i + 4, headOK
		}
		if bytes.Contains(b, []byte("\n\n")) {
			return 0, headOK
		}
		if c.w == len(*c.rb) {
			if c.r == 0 {
				return 0, headOK // over the buffer: net/http's limits apply
			}
			c.w = copy(*c.rb, b)
			c.r = 0
		}
		if !headerDeadline {
			// The head's time runs from its first byte.
			_ = c.nc.SetReadDeadline(time.Now().Add(c.s.limits.ReadHeaderTimeout))
			headerDeadline = true
		}
		m, err := c.io.read(c.nc, (*c.rb)[c.w:])
		c.w += m
		if err != nil && m == 0 {
			return 0, headClose
		}
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// hasBareCRorLF says a head has a CR or LF outside a CRLF pair.
func hasBareCRorLF(b []byte) bool {
	for i, ch := range b {
		switch {
		case ch == '\r' && (i+1 >= len(b) || b[i+1] != '\n'):
			return true
		case ch == '\n' && (i == 0 || b[i-1] != '\r'):
			return true
		}
	}
	return false
}

// awaitRequest waits for the first bytes of a request, up to the idle
// timeout (the header timeout for a connection's first request): with the
// buffer for bufferHold, then parked (headPark), without it.
func (c *serverConn) awaitRequest() int {
	if c.parked {
		return c.awaitParked()
	}
	now := time.Now()
	limit := c.s.limits.ReadHeaderTimeout
	if c.phase.Load() != phaseNew {
		limit = c.s.limits.IdleTimeout
	}
	c.until = now.Add(limit)
	c.getBuffer()
	c.r, c.w = 0, 0
	hold := c.until
	if c.raw != nil {
		hold = minTime(c.until, now.Add(bufferHold))
	}
	_ = c.nc.SetReadDeadline(hold)
	// Set the deadline before looking at the phase: a Shutdown that closes
	// the connection sets a deadline in the past after its change.
	if c.phase.Load() == phaseClosing {
		return headClose
	}
	n, err := c.io.read(c.nc, *c.rb)
	if n > 0 {
		c.w = n
		return headOK
	}
	if !isTimeout(err) || c.raw == nil || c.phase.Load() == phaseClosing || !time.Now().Before(c.until) {
		return headClose
	}
	c.shed()
	c.parked = true
	c.s.parked()
	return headPark
}

// awaitParked waits for readability without a buffer, then reads.
func (c *serverConn) awaitParked() int {
	_ = c.nc.SetReadDeadline(c.until)
	if c.phase.Load() == phaseClosing {
		return headClose
	}
	for {
		closed, err := waitReadable(c.raw)
		if closed || err != nil || c.phase.Load() == phaseClosing {
			return headClose
		}
		c.getBuffer()
		n, err := c.io.read(c.nc, *c.rb)
		if n > 0 {
			c.w = n
			c.parked = false
			return headOK
		}
		if err != nil {
			return headClose
		}
	}
}

// shed gives back what an idle connection does not need: its buffer, its
// reqState (the last request and the maps and slices sized by past ones)
// and the timer of its watch.
func (c *serverConn) shed() {
	c.st = nil
	c.hasST.Store(false)
	c.putBuffer() // after: !buffered() says both went
	c.wmu.Lock()
	if c.watch != nil {
		c.watch.Stop()
		c.watch = nil
	}
	c.wmu.Unlock()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// parse builds the request from its head, or returns nil for what the loop
// leaves to net/http: other versions than HTTP/1.1, targets other than a
// path, CONNECT, upgrades, Expect, any Transfer-Encoding, several or bad
// Content-Length or Host fields, folded or malformed lines.
func (c *serverConn) parse(head []byte) *http.Request {
	// Field names are put in canonical form in place (as net/http would
	// do with a head handed over to it), so that the keys cut from block
	// are the header's own, with no allocation.
	if !canonicalizeKeys(head) {
		return nil
	}
	block := string(head[:len(head)-4])
	line, rest, _ := strings.Cut(block, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || method == "" || !isToken(method) || method == http.MethodConnect || target == "" || target[0] != '/' {
		return nil
	}
	st := c.state()
	if st.hdr == nil {
		st.hdr = http.Header{}
	}
	clear(st.hdr)
	st.fields = st.fields[:0]
	var host string
	hosts, lengths := 0, 0
	length := int64(0)
	closing := false
	for rest != "" {
		var l string
		l, rest, _ = strings.Cut(rest, "\r\n")
		k, v, _ := strings.Cut(l, ":")
		v = strings.Trim(v, " \t")
		if !validFieldValue(v) {
			return nil
		}
		switch k {
		case "Host":
			hosts++
			host = v
		case "Content-Length":
			lengths++
			if length = parseLength([]byte(v)); length < 0 {
				return nil
			}
		case "Transfer-Encoding", "Expect", "Upgrade":
			return nil
		case "Connection":
			closing = closing || hasToken(v, "close")
		}
		st.fields = append(st.fields, headField{k, v})
	}
	if hosts != 1 || lengths > 1 || host == "" || !validHost(host) {
		return nil
	}
	if cap(st.vals) < len(st.fields) {
		st.vals = make([]string, len(st.fields))
	}
	vals := st.vals[:len(st.fields)]
	for i, f := range st.fields {
		if old, ok := st.hdr[f.k]; ok {
			st.hdr[f.k] = append(old[:len(old):len(old)], f.v)
			continue
		}
		vals[i] = f.v
		st.hdr[f.k] = vals[i : i+1 : i+1]
	}
	if !c.setURL(target) {
		return nil
	}
	st.req = http.Request{
		Method:        method,
		URL:           &st.url,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        st.hdr,
		Body:          http.NoBody,
		ContentLength: length,
		Close:         closing,
		Host:          host,
		RemoteAddr:    c.remote,
		RequestURI:    target,
	}
	return &st.req
}

// canonicalizeKeys puts the field names of a head (a request line, then
// fields, ending in CRLFCRLF) in canonical form in place; false when a
// line has no name or its name is not a token (a folded line starts with
// a space).
func canonicalizeKeys(head []byte) bool {
	_, fields, _ := bytes.Cut(head[:len(head)-4], crlf)
	for len(fields) > 0 {
		var l []byte
		l, fields, _ = bytes.Cut(fields, crlf)
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 || !canonicalizeKey(l[:colon]) {
			return false
		}
	}
	return true
}

// setURL parses an origin-form target; a path with nothing to unescape
// (the common case) is set without url.ParseRequestURI's allocations.
func (c *serverConn) setURL(target string) bool {
	for i := 0; i < len(target); i++ {
		if target[i] < '!' || target[i] == 0x7f {
			return false // net/url refuses control bytes
		}
	}
	path, query, hasQuery := strings.Cut(target, "?")
	if plainPath(path) {
		c.st.url = url.URL{Path: path, RawQuery: query, ForceQuery: hasQuery && query == ""}
		return strings.IndexByte(query, '#') < 0
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return false
	}
	c.st.url = *u
	return true
}

// plainPath: a path url.URL would keep as is (no escapes, nothing it would
// escape).
func plainPath(p string) bool {
	for i := 0; i < len(p); i++ {
		ch := p[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case strings.IndexByte("-_.~$&+,/:;=@", ch) >= 0:
		default:
			return false
		}
	}
	return true
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// validFieldValue: no control bytes but tab (net/http answers 400).
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if ch := v[i]; ch < ' ' && ch != '\t' || ch == 0x7f {
			return false
		}
	}
	return true
}

// validHost: a host name, IPv4 or bracketed IPv6 address and port; other
// bytes, some of which net/http accepts, are left to it.
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		ch := h[i]
		switch {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9':
		case ch == '-', ch == '.', ch == ':', ch == '[', ch == ']':
		default:
			return false
		}
	}
	return true
}

// serveRequest runs the handler on req and finishes its answer; it says
// whether the connection can carry another request.
func (c *serverConn) serveRequest(req *http.Request) bool {
	var body *bodyReader
	if req.ContentLength > 0 {
		body = &bodyReader{c: c, remaining: req.ContentLength}
		req.Body = body
	}
	ctx := newReqCtx(c.base)
	req = req.WithContext(ctx)
	w := &c.st.rw
	w.reset(req)
	c.startWatch(ctx, body, body == nil && c.r < c.w)
	aborted := c.runHandler(w, req)
	c.stopWatch()
	ctx.cancel()
	keep := !aborted && !req.Close && !c.s.shutting.Load()
	if body != nil && !body.settle() {
		keep = false
	}
	if aborted {
		w.abort()
		return false
	}
	return w.finish(keep) && keep
}

func (c *serverConn) runHandler(w *responseWriter, req *http.Request) (aborted bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler {
				c.s.logf("router: panic serving %s: %v\n%s", c.remote, p, stack())
			}
			aborted = true
		}
	}()
	c.s.Handler.ServeHTTP(w, req)
	return false
}

// startWatch arms the watch of the request in flight.
func (c *serverConn) startWatch(ctx *reqCtx, body *bodyReader, nextReady bool) {
	if c.raw == nil {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.cur, c.body, c.nextReady = ctx, body, nextReady
	c.gone, c.up = false, nil
	if c.watch == nil {
		c.watch = time.AfterFunc(watchDelay, c.watchClient)
		return
	}
	c.watch.Reset(watchDelay)
}

// watchClient runs when a handler has run for watchDelay: once the
// request's body has been read, a goroutine waits for the connection to
// end and then cancels the request. Bytes of a next request (pipelining)
// end the watch without cancelling.
func (c *serverConn) watchClient() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.cur == nil || c.watchDone != nil || c.nextReady {
		return
	}
	if c.body != nil && !c.body.done() {
		c.watch.Reset(watchDelay)
		return
	}
	done := make(chan struct{})
	c.watchDone = done
	ctx := c.cur
	_ = c.nc.SetReadDeadline(time.Time{})
	go func() {
		defer close(done)
		if closed, _ := waitReadable(c.raw); closed {
			ctx.cancel()
			c.abortUpstream()
		}
	}()
}

// abortUpstream aborts the upstream connection of the request in flight,
// and any it holds later: the client left.
func (c *serverConn) abortUpstream() {
	c.wmu.Lock()
	c.gone = true
	uc := c.up
	c.up = nil
	c.wmu.Unlock()
	if uc != nil {
		uc.abort()
	}
}

// holdUpstream has uc aborted when the client leaves during the request
// in flight, as a context.AfterFunc on its context would (cheaper: no
// allocation). It says false, doing nothing, when ctx is not that
// request's own context (a handler derived one) or another connection is
// held.
func (c *serverConn) holdUpstream(ctx context.Context, uc *upConn) bool {
	own := ownCtx(ctx)
	c.wmu.Lock()
	if c.cur == nil || own != c.cur || c.up != nil {
		c.wmu.Unlock()
		return false
	}
	if c.gone || ctx.Err() != nil {
		c.wmu.Unlock()
		uc.abort()
		return true
	}
	c.up = uc
	c.wmu.Unlock()
	return true
}

// releaseUpstream undoes holdUpstream; it says whether uc was not aborted.
func (c *serverConn) releaseUpstream(uc *upConn) bool {
	c.wmu.Lock()
	held := c.up == uc
	if held {
		c.up = nil
	}
	c.wmu.Unlock()
	return held
}

// stopWatch ends the watch; the next read sets its own deadline.
func (c *serverConn) stopWatch() {
	if c.raw == nil {
		return
	}
	c.wmu.Lock()
	c.watch.Stop()
	c.cur, c.body = nil, nil
	done := c.watchDone
	c.watchDone = nil
	c.wmu.Unlock()
	if done != nil {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
		<-done
	}
}

// bodyReader is a request body of known length. Reads after the handler
// returned fail, so a goroutine the handler left behind cannot take the
// bytes of the next request.
type bodyReader struct {
	c         *serverConn
	mu        sync.Mutex
	remaining int64
	err       error
	closed    bool
	finished  atomic.Bool // the body was read to its end
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case b.err != nil:
		return 0, b.err
	case b.remaining == 0:
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.c.readBody(p)
	b.remaining -= int64(n)
	switch {
	case b.remaining == 0:
		b.finished.Store(true)
		err = io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *bodyReader) Close() error { return nil }

func (b *bodyReader) done() bool { return b.finished.Load() }

// settle ends the body when the handler has returned: what is left of it
// is read past if it is small, else the connection cannot go on. It says
// whether the connection can carry another request.
func (b *bodyReader) settle() bool {
	if !b.mu.TryLock() {
		// A goroutine of the handler is still reading it.
		_ = b.c.nc.SetReadDeadline(aLongTimeAgo)
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	b.closed = true
	if b.err != nil {
		return false
	}
	if b.remaining == 0 {
		return true
	}
	if b.remaining > maxDiscard {
		return false
	}
	_ = b.c.nc.SetReadDeadline(time.Now().Add(b.c.s.limits.BodyTimeout))
	buf := make([]byte, min(b.remaining, 32<<10))
	for b.remaining > 0 {
		n, err := b.c.readBody(buf[:min(int64(len(buf)), b.remaining)])
		b.remaining -= int64(n)
		if err != nil && b.remaining > 0 {
			return false
		}
	}
	return true
}

// readBody reads body bytes: first those buffered with the head.
func (c *serverConn) readBody(p []byte) (int, error) {
	if c.r < c.w {
		n := copy(p, (*c.rb)[c.r:c.w])
		c.r += n
		return n, nil
	}
	return c.io.read(c.nc, p)
}
