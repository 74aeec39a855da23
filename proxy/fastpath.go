package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The fast path forwards the common request, HTTP/1.1 to the target, from
// the handler's goroutine: the request's head (and a small body) in one
// write on a pooled keep-alive connection of the target (upstream.go), then
// only the response's framing parsed (status line, Content-Length,
// Transfer-Encoding, Connection) and its body copied to the client, with no
// goroutine or channel per request or connection. What it does not carry
// goes through httputil.ReverseProxy as before (see fastEligible).

// fastBodyMax is the largest request body the fast path carries: a body of
// known length up to it is read whole so that it goes out with the head in
// one write. Larger or unsized bodies are streamed by the reverse proxy.
const fastBodyMax = 16 << 10

// maxResponseHead bounds the status line and header fields of a response.
const maxResponseHead = 1 << 20

// maxInformational bounds the 1xx answers before the final one.
const maxInformational = 8

var (
	errHeadTooLarge        = errors.New("upstream response head too large")
	errMalformedHead       = errors.New("malformed upstream response head")
	errUnsupportedEncoding = errors.New("unsupported upstream transfer encoding")
	errUnexpectedUpgrade   = errors.New("upstream switched protocols unasked")
)

// fastEligible says whether the fast path can carry req. Upgrades
// (WebSocket), gRPC and other requests that ask for trailers, Expect:
// 100-continue, CONNECT, and bodies that are unsized or over fastBodyMax go
// through the reverse proxy.
func fastEligible(req *http.Request) bool {
	if req.ContentLength < 0 || req.ContentLength > fastBodyMax || req.Method == http.MethodConnect || req.URL.Opaque != "" {
		return false
	}
	h := req.Header
	if len(h["Upgrade"]) > 0 || len(h["Te"]) > 0 || len(h["Expect"]) > 0 {
		return false
	}
	if ct := h["Content-Type"]; len(ct) > 0 && strings.HasPrefix(ct[0], "application/grpc") {
		return false
	}
	return true
}

// headBuffers hold request heads and response heads while they are built
// or parsed.
var headBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// putHeadBuffer keeps a buffer for reuse unless an outsized head grew it.
func putHeadBuffer(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		headBuffers.Put(b)
	}
}

// forwardFast runs one attempt on the fast path. Errors before the
// response's head are answered as the reverse proxy's are (answerError); a
// body cut off by the target aborts the handler, as the reverse proxy does.
func (r *Router) forwardFast(w http.ResponseWriter, req *http.Request, t *target, a *attempt) {
	ctx := req.Context()
	ds := t.drainCtx.Load()
	fail := func(err error) { r.answerError(w, a, err, ds.ctx.Err() != nil, ctx.Err() != nil) }
	reqBuf := headBuffers.Get().(*[]byte)
	respBuf := headBuffers.Get().(*[]byte)
	out := appendRequestHead((*reqBuf)[:0], req)
	defer func() {
		*reqBuf = out
		putHeadBuffer(reqBuf)
		putHeadBuffer(respBuf)
	}()

	// A request that may be sent twice is retried on a fresh connection
	// when a pooled one turns out closed; others only get connections that
	// pass a liveness check.
	replayable := a.body == nil && idempotentMethod(req.Method)
	var (
		uc    *upConn
		rh    respHead
		stopC func() bool
	)
	// Served by the router's loop, the client's leaving aborts uc through
	// the connection (holdUpstream); else through the context.
	lc, _ := ctx.Value(loopConnKey{}).(*serverConn)
	stop := func() bool {
		if stopC == nil {
			return lc.releaseUpstream(uc)
		}
		return stopC()
	}
	for try := 0; ; try++ {
		var err error
		uc = nil
		if try == 0 {
			uc = t.conns.get(time.Now(), !replayable)
		}
		if uc == nil {
			if uc, err = dialUpstream(ctx, t.addr); err != nil {
				fail(err)
				return
			}
		}
		if a.body != nil && try == 0 {
			// Read after the dial, so that a refused connection leaves the
			// body unread and the request can go to another instance.
			n := len(out)
			out = slices.Grow(out, int(req.ContentLength))[:n+int(req.ContentLength)]
			if _, err := io.ReadFull(req.Body, out[n:]); err != nil {
				t.conns.put(uc, time.Now())
				fail(err)
				return
			}
		}
		if lc == nil || !lc.holdUpstream(ctx, uc) {
			stopC = context.AfterFunc(ctx, uc.abortFn)
		} else {
			stopC = nil
		}
		ds.hold(uc)
		*respBuf, err = r.exchange(w, uc, out, req.Method, &rh, (*respBuf)[:0])
		if err == nil {
			break
		}
		stop()
		ds.release(uc)
		uc.close()
		if try == 0 && uc.reused && replayable && rh.nothingRead && closedByPeer(err) && !uc.aborted.Load() {
			continue
		}
		fail(err)
		return
	}

	rh.copyHeader(w.Header())
	w.WriteHeader(rh.code)
	readErr, writeErr := copyBody(w, uc.br, &rh)
	// Both watchers must be stopped; a watcher that already ran has
	// aborted the connection.
	quiet := stop()
	quiet = ds.release(uc) && quiet
	if readErr == nil && writeErr == nil && quiet && rh.reusable() && uc.br.Buffered() == 0 {
		t.conns.put(uc, time.Now())
		return
	}
	uc.close()
	if readErr != nil {
		// The client must see the response is cut short: net/http closes
		// its connection (or resets its HTTP/2 stream).
		panic(http.ErrAbortHandler)
	}
}

// exchange writes the request and reads the response's head into rh,
// under the response-header timeout, passing 1xx answers on to w. It
// returns buf, grown.
func (r *Router) exchange(w http.ResponseWriter, uc *upConn, out []byte, method string, rh *respHead, buf []byte) ([]byte, error) {
	uc.armHeadDeadline(time.Now(), r.cfg.ResponseHeaderTimeout)
	if _, err := uc.io.write(uc.nc, out); err != nil {
		rh.nothingRead = true
		return buf, err
	}
	buf, err := rh.read(w, uc.br, method, buf)
	if err == nil && (rh.length < 0 || rh.length > int64(uc.br.Buffered())) {
		// The body needs more reads, which the head's timeout must not
		// cut. A connection whose whole answer is in hand keeps the
		// deadline: its next use sets its own before any read.
		uc.setReadDeadline(time.Time{})
		uc.headBy = time.Time{}
	}
	return buf, err
}

// armHeadDeadline gives the response's head until timeout from now. The
// deadline an earlier exchange on uc set is kept when it falls no sooner
// and at most timeout/16 later: a connection that carries request after
// request re-arms its timer once in timeout/16 rather than for each. So
// the head's timeout is never shorter than timeout, and at most a
// sixteenth longer.
func (uc *upConn) armHeadDeadline(now time.Time, timeout time.Duration) {
	want := now.Add(timeout)
	if !uc.headBy.Before(want) && uc.headBy.Sub(want) <= timeout/16 {
		return
	}
	uc.headBy = want.Add(timeout / 16)
	uc.setReadDeadline(uc.headBy)
}

// setReadDeadline sets the read deadline without undoing an abort that
// raced with it.
func (uc *upConn) setReadDeadline(t time.Time) {
	_ = uc.nc.SetReadDeadline(t)
	if uc.aborted.Load() {
		_ = uc.nc.SetDeadline(aLongTimeAgo)
	}
}

// closedByPeer says err is how a write or read fails on a connection the
// target had closed (not a timeout: a slow target is not asked twice).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

func idempotentMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions || m == http.MethodTrace
}

// appendRequestHead appends the HTTP/1.1 head of the outbound request: the
// client's Host, the client's fields less hop-by-hop ones (the forwarding
// middleware has set X-Forwarded-*), and the body's length.
func appendRequestHead(b []byte, req *http.Request) []byte {
	b = append(b, req.Method...)
	b = append(b, ' ')
	if p := req.URL.EscapedPath(); p != "" {
		b = append(b, p...)
	} else {
		b = append(b, '/')
	}
	if req.URL.ForceQuery || req.URL.RawQuery != "" {
		b = append(b, '?')
		b = append(b, req.URL.RawQuery...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, req.Host...)
	b = append(b, "\r\n"...)
	conn := req.Header["Connection"]
	named := namesFields(conn)
	for k, vs := range req.Header {
		if skipRequestField(k) || named && !routerField(k) && listedIn(conn, k) {
			continue
		}
		for _, v := range vs {
			b = appendField(b, k, v)
		}
	}
	if cl := req.ContentLength; cl > 0 || cl == 0 && (req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch) {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, cl, 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// skipRequestField: hop-by-hop fields, those the head writes itself, and
// Forwarded (the reverse proxy drops it too: the router vouches only for
// the X-Forwarded-* it sets).
func skipRequestField(k string) bool {
	switch k {
	case "Trailer", "Content-Length", "Host", "Forwarded":
		return true
	}
	return hopByHop(k)
}

// hopByHop says k is a hop-by-hop field of either direction (Trailer
// aside: each direction decides on it).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// routerFields are the fields the router sets itself (the forwarded
// middleware, the request ID): a client that names one in Connection must
// not make the router drop what it vouches for.
var routerFields = []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", requestIDKey}

func routerField(k string) bool { return slices.Contains(routerFields, k) }

// namesFields says Connection fields name a field besides Keep-Alive
// (hop-by-hop, dropped anyway): the "Connection: keep-alive" of browsers
// spares every field a look at the list.
func namesFields(conn []string) bool {
	for _, v := range conn {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, "keep-alive") {
				return true
			}
		}
	}
	return false
}

// listedIn says k is named by a Connection field (such fields are hop-by-hop).
func listedIn(conn []string, k string) bool {
	for _, v := range conn {
		if hasToken(v, k) {
			return true
		}
	}
	return false
}

// hasToken says the comma-separated list v names tok (in any case).
func hasToken(v, tok string) bool {
	for t := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(t), tok) {
			return true
		}
	}
	return false
}

// respHead is what the fast path knows of a response's head.
type respHead struct {
	code        int
	length      int64 // body length; -1 for chunked or until close
	chunked     bool
	close       bool // the connection cannot carry another request
	sse         bool // text/event-stream: flushed as it comes, even when sized
	nothingRead bool // the connection failed before a byte of the answer
	connection  bool // a Connection field names a field besides Keep-Alive
	block       string
	// The fields, in fieldsBuf and then, past its size, in more; no
	// pointer into the struct itself, so that it can live on the stack.
	nfields   int
	fieldsBuf [32]field
	more      []field
}

// field locates one header field in respHead.block.
type field struct{ k0, k1, v0, v1 int32 }

func (rh *respHead) key(f field) string   { return rh.block[f.k0:f.k1] }
func (rh *respHead) value(f field) string { return rh.block[f.v0:f.v1] }

func (rh *respHead) reusable() bool { return !rh.close }

func (rh *respHead) addField(f field) {
	if rh.nfields < len(rh.fieldsBuf) {
		rh.fieldsBuf[rh.nfields] = f
	} else {
		rh.more = append(rh.more, f)
	}
	rh.nfields++
}

func (rh *respHead) field(i int) field {
	if i < len(rh.fieldsBuf) {
		return rh.fieldsBuf[i]
	}
	return rh.more[i-len(rh.fieldsBuf)]
}

// read parses a response head from br into buf (returned, grown) and rh.
// Informational answers (102, 103 Early Hints) before it are passed on to
// w, as the reverse proxy does; a 100 Continue nobody asked for is dropped.
func (rh *respHead) read(w http.ResponseWriter, br *bufio.Reader, method string, buf []byte) ([]byte, error) {
	for range maxInformational {
		*rh = respHead{}
		var err error
		buf, err = rh.readOne(br, buf[:0])
		if err != nil {
			return buf, err
		}
		switch {
		case rh.code == http.StatusSwitchingProtocols:
			return buf, errUnexpectedUpgrade
		case rh.code >= 200:
			rh.frame(method)
			return buf, nil
		case rh.code != http.StatusContinue:
			rh.passInformational(w)
		}
	}
	return buf, errMalformedHead
}

func (rh *respHead) readOne(br *bufio.Reader, buf []byte) ([]byte, error) {
	buf, line, err := appendLine(br, buf)
	if err != nil {
		rh.nothingRead = len(buf) == 0
		if err == io.EOF && !rh.nothingRead {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	// HTTP/1.x NNN[ reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[7] != '0' && line[7] != '1' || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return buf, errMalformedHead
	}
	code := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return buf, errMalformedHead
		}
		code = code*10 + int(c-'0')
	}
	if code < 100 {
		return buf, errMalformedHead
	}
	rh.code = code
	http10 := line[7] == '0'
	keepAlive := false
	rh.length = -1
	for {
		start := len(buf)
		buf, line, err = appendLine(br, buf)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !canonicalizeKey(line[:colon]) {
			return buf, errMalformedHead
		}
		v0, v1 := colon+1, len(line)
		for v0 < v1 && (line[v0] == ' ' || line[v0] == '\t') {
			v0++
		}
		for v1 > v0 && (line[v1-1] == ' ' || line[v1-1] == '\t') {
			v1--
		}
		k, v := line[:colon], line[v0:v1]
		switch string(k) {
		case "Content-Length":
			n := parseLength(v)
			if n < 0 || rh.length >= 0 && rh.length != n {
				return buf, errMalformedHead
			}
			rh.length = n
		case "Transfer-Encoding":
			if !bytes.EqualFold(v, []byte("chunked")) || rh.chunked {
				return buf, errUnsupportedEncoding
			}
			rh.chunked = true
		case "Connection":
			for tok := range bytes.SplitSeq(v, []byte(",")) {
				switch tok = bytes.TrimSpace(tok); {
				case len(tok) == 0:
				case bytes.EqualFold(tok, []byte("keep-alive")):
					keepAlive = true // names Keep-Alive, hop-by-hop anyway
				default:
					rh.close = rh.close || bytes.EqualFold(tok, []byte("close"))
					rh.connection = true
				}
			}
		case "Content-Type":
			rh.sse = bytes.HasPrefix(v, []byte("text/event-stream"))
		}
		rh.addField(field{int32(start), int32(start + colon), int32(start + v0), int32(start + v1)})
	}
	if http10 && !keepAlive {
		rh.close = true
	}
	rh.block = string(buf)
	return buf, nil
}

// frame settles the body's framing (RFC 9112, section 6.3).
func (rh *respHead) frame(method string) {
	switch {
	case method == http.MethodHead || rh.code == http.StatusNoContent || rh.code == http.StatusNotModified:
		rh.length = 0
		rh.chunked = false
	case rh.chunked:
		// A Content-Length beside chunked framing is ignored, and the
		// connection not trusted with another request (RFC 9112, 6.3).
		if rh.length >= 0 {
			rh.close = true
		}
		rh.length = -1
	case rh.length < 0:
		// Delimited by the end of the connection.
		rh.close = true
	}
}

// parseLength parses a Content-Length value; -1 when it is not one.
func parseLength(v []byte) int64 {
	if len(v) == 0 || len(v) > 18 {
		return -1
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// appendLine appends the next line read from br, without its CRLF, to buf
// and returns buf and the line.
func appendLine(br *bufio.Reader, buf []byte) ([]byte, []byte, error) {
	start := len(buf)
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > maxResponseHead {
			return buf, nil, errHeadTooLarge
		}
		buf = append(buf, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return buf, nil, err
		}
	}
	end := len(buf) - 1
	if end > start && buf[end-1] == '\r' {
		end--
	}
	buf = buf[:end]
	return buf, buf[start:], nil
}

// canonicalizeKey rewrites a field name in place to its canonical form
// (Content-Type) and says whether it is a valid token.
func canonicalizeKey(k []byte) bool {
	upper := true
	for i, c := range k {
		if !tokenChar(c) {
			return false
		}
		switch {
		case upper && 'a' <= c && c <= 'z':
			k[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			k[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	return true
}

func tokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// copyHeader adds the response's end-to-end fields to h. All values share
// one backing array, so a response's fields cost two allocations.
func (rh *respHead) copyHeader(h http.Header) {
	vals := make([]string, rh.nfields)
	for i := range rh.nfields {
		f := rh.field(i)
		k := rh.key(f)
		if hopByHop(k) {
			continue
		}
		switch k {
		case "Trailer":
			// Announces the trailers of a chunked body, which are passed on.
			if !rh.chunked {
				continue
			}
		case "Content-Length":
			if rh.chunked {
				continue
			}
		}
		if rh.connection && rh.namedByConnection(k) {
			continue
		}
		v := rh.value(f)
		if old, ok := h[k]; ok {
			h[k] = append(old, v)
			continue
		}
		vals[i] = v
		h[k] = vals[i : i+1 : i+1]
	}
}

// passInformational writes a 1xx answer with its own fields, leaving the
// fields already set for the final answer (X-Request-ID) as they were.
func (rh *respHead) passInformational(w http.ResponseWriter) {
	h := w.Header()
	final := h.Clone()
	clear(h)
	rh.copyHeader(h)
	w.WriteHeader(rh.code)
	clear(h)
	maps.Copy(h, final)
}

func (rh *respHead) namedByConnection(k string) bool {
	for i := range rh.nfields {
		if f := rh.field(i); rh.key(f) == "Connection" && hasToken(rh.value(f), k) {
			return true
		}
	}
	return false
}

// copyBody copies the response body from br to w. A sized body is written
// as it comes (net/http buffers it); a streamed one (chunked, until close,
// or server-sent events) is flushed after every read, so nothing is held
// back. readErr is the target's failure, writeErr the client's.
func copyBody(w http.ResponseWriter, br *bufio.Reader, rh *respHead) (readErr, writeErr error) {
	if rh.length == 0 {
		return nil, nil
	}
	if rh.length > 0 && rh.length <= int64(br.Buffered()) {
		// The whole body came with the head: one write, no copy buffer.
		p, _ := br.Peek(int(rh.length))
		_, writeErr = w.Write(p)
		_, _ = br.Discard(len(p))
		if writeErr == nil && rh.sse {
			flush(w)
		}
		return nil, writeErr
	}
	var src io.Reader = br
	if rh.chunked {
		src = httputil.NewChunkedReader(br)
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	stream := rh.length < 0 || rh.sse
	remaining := rh.length
	for remaining != 0 {
		p := buf
		if remaining > 0 && remaining < int64(len(p)) {
			p = p[:remaining]
		}
		n, err := src.Read(p)
		if n > 0 {
			if remaining > 0 {
				remaining -= int64(n)
			}
			if _, werr := w.Write(p[:n]); werr != nil {
				return nil, werr
			}
			if stream {
				flush(w)
			}
		}
		if err == io.EOF {
			switch {
			case rh.chunked:
				return readTrailers(br, w.Header()), nil
			case remaining < 0:
				return nil, nil // the end of a body delimited by the connection's end
			}
			return io.ErrUnexpectedEOF, nil
		}
		if err != nil {
			return err, nil
		}
	}
	return nil, nil
}

// readTrailers reads the trailer section after a chunked body and passes
// its fields on as net/http's trailers.
func readTrailers(br *bufio.Reader, h http.Header) error {
	var buf []byte
	for {
		var line []byte
		var err error
		buf, line, err = appendLine(br, buf[:0])
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !canonicalizeKey(line[:colon]) {
			return errMalformedHead
		}
		h.Add(http.TrailerPrefix+string(line[:colon]), strings.TrimSpace(string(line[colon+1:])))
	}
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
