package proxy

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// responseWriter is the loop's http.ResponseWriter. The head and the body
// go into one buffer, written when the handler flushes or returns, or when
// it fills; a body larger than the buffer is written straight through. A
// handler that sets no Content-Length gets one computed when its whole body
// fits in the buffer, else a chunked body (as net/http does). It also
// answers http.ResponseController's Flush and read/write deadlines; it
// cannot be hijacked (upgrades are served by net/http).
type responseWriter struct {
	c    *serverConn
	req  *http.Request
	hdr  http.Header
	head bool // a HEAD request

	wroteHeader bool // the final status is set
	committed   bool // the head is in out (or written)
	code        int
	length      int64 // declared Content-Length; -1 when none
	written     int64 // body bytes the handler wrote
	chunked     bool
	noBody      bool // the status or the method forbids a body
	close       bool // the connection ends after this answer
	trailers    []string
	out         *[]byte // pending output; nil until needed
	pending     *[]byte // body before the head is committed (length unknown)
	err         error   // the client's write error
}

// outBuffers hold the pending output of answers.
var outBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// writeThrough: body writes at least this large skip the buffer.
const writeThrough = 8 << 10

func (w *responseWriter) reset(req *http.Request) {
	if w.hdr == nil {
		w.hdr = http.Header{}
	}
	clear(w.hdr)
	*w = responseWriter{c: w.c, req: req, hdr: w.hdr, head: req.Method == http.MethodHead, length: -1, trailers: w.trailers[:0]}
}

func (w *responseWriter) Header() http.Header { return w.hdr }

func (w *responseWriter) buf() []byte {
	if w.out == nil {
		w.out = outBuffers.Get().(*[]byte)
	}
	return *w.out
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.code = code
	w.noBody = w.head || !bodyAllowed(code)
	if cl := w.hdr["Content-Length"]; len(cl) == 1 {
		if n := parseLength([]byte(strings.TrimSpace(cl[0]))); n >= 0 {
			w.length = n
		}
	}
	if code == http.StatusSwitchingProtocols {
		w.close = true
	}
}

func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// writeInformational sends a 1xx answer at once with the fields set now.
func (w *responseWriter) writeInformational(code int) {
	b := appendStatusLine(w.buf(), code)
	b = w.appendFields(b, false)
	*w.out = append(b, "\r\n"...)
	w.flushOut()
}

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	return append(b, "\r\n"...)
}

// appendFields appends the handler's fields; with final, the framing and
// connection fields the writer decides are left to the caller.
func (w *responseWriter) appendFields(b []byte, final bool) []byte {
	for k, vs := range w.hdr {
		if !isToken(k) || strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		switch k {
		case "Content-Length", "Transfer-Encoding", "Connection":
			if final {
				continue
			}
		}
		for _, v := range vs {
			b = appendField(b, k, v)
		}
	}
	return b
}

// appendField appends the line "k: v", with CR and LF in v turned into
// spaces, as net/http does, so that no value can end the head.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	if !strings.ContainsAny(v, "\r\n") {
		b = append(b, v...)
	} else {
		for i := 0; i < len(v); i++ {
			ch := v[i]
			if ch == '\r' || ch == '\n' {
				ch = ' '
			}
			b = append(b, ch)
		}
	}
	return append(b, "\r\n"...)
}

// commit puts the head in the output; first is the body's first bytes
// (for sniffing the type), done says the handler has returned.
func (w *responseWriter) commit(first []byte, done bool) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.committed = true
	tr := w.hdr["Trailer"]
	if len(tr) > 0 && !w.noBody {
		for _, v := range tr {
			for k := range strings.SplitSeq(v, ",") {
				// As net/http: a field that may not be a trailer (framing,
				// routing, Content-Type, If-*) is not declared.
				if k = strings.TrimSpace(k); k != "" && httpguts.ValidTrailerHeader(k) {
					w.trailers = append(w.trailers, http.CanonicalHeaderKey(k))
				}
			}
		}
	}
	switch {
	case w.length >= 0 || !bodyAllowed(w.code):
	case done && len(tr) == 0 && (!w.head || w.written > 0):
		w.length = w.written
	case !w.head:
		w.chunked = true
	}
	if w.c.s.shutting.Load() {
		w.close = true
	}
	if listedIn(w.hdr["Connection"], "close") {
		w.close = true
	}
	if _, ok := w.hdr["Content-Type"]; !ok && len(first) > 0 && bodyAllowed(w.code) {
		w.hdr["Content-Type"] = []string{http.DetectContentType(first)}
	}
	b := appendStatusLine(w.buf(), w.code)
	b = w.appendFields(b, true)
	if _, ok := w.hdr["Date"]; !ok {
		b = append(b, "Date: "...)
		b = appendDate(b)
		b = append(b, "\r\n"...)
	}
	switch {
	case w.chunked:
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	case w.length >= 0 && (bodyAllowed(w.code) || w.hdr["Content-Length"] != nil):
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, w.length, 10)
		b = append(b, "\r\n"...)
	}
	if w.close {
		b = append(b, "Connection: close\r\n"...)
	}
	*w.out = append(b, "\r\n"...)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody {
		if !bodyAllowed(w.code) {
			return 0, http.ErrBodyNotAllowed
		}
		w.written += int64(len(p)) // a HEAD answer's length
		return len(p), nil
	}
	n := len(p)
	var err error
	if w.length >= 0 && w.written+int64(n) > w.length {
		n = int(w.length - w.written)
		p = p[:n]
		err = http.ErrContentLength
	}
	w.written += int64(n)
	if !w.committed {
		if w.length < 0 && len(w.held())+n <= writeThrough {
			// The length is still unknown: hold the body back.
			if w.pending == nil {
				w.pending = outBuffers.Get().(*[]byte)
			}
			*w.pending = append(*w.pending, p...)
			return n, err
		}
		first := p
		if h := w.held(); len(h) > 0 {
			first = h
		}
		w.commit(first, false)
		w.emitPending()
	}
	w.emit(p)
	if w.err != nil {
		return 0, w.err
	}
	return n, err
}

// held is the body held back.
func (w *responseWriter) held() []byte {
	if w.pending == nil {
		return nil
	}
	return *w.pending
}

// emitPending moves the held-back body to the output.
func (w *responseWriter) emitPending() {
	if w.pending != nil {
		w.emit(*w.pending)
		putOutBuffer(w.pending)
		w.pending = nil
	}
}

func putOutBuffer(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		outBuffers.Put(b)
	}
}

// emit adds body bytes to the output (a chunk when chunked), writing it out
// when it fills.
func (w *responseWriter) emit(p []byte) {
	if len(p) == 0 || w.err != nil {
		return
	}
	b := *w.out
	if w.chunked {
		b = strconv.AppendInt(b, int64(len(p)), 16)
		b = append(b, "\r\n"...)
	}
	if len(p) >= writeThrough {
		bufs := net.Buffers{b, p}
		if w.chunked {
			bufs = append(bufs, crlf)
		}
		_, w.err = bufs.WriteTo(w.c.nc)
		*w.out = b[:0]
		return
	}
	b = append(b, p...)
	if w.chunked {
		b = append(b, crlf...)
	}
	*w.out = b
	if len(b) >= writeThrough {
		w.flushOut()
	}
}

var crlf = []byte("\r\n")

// flushOut writes the pending output.
func (w *responseWriter) flushOut() {
	if w.out == nil || len(*w.out) == 0 {
		return
	}
	if w.err == nil {
		_, w.err = w.c.io.write(w.c.nc, *w.out)
	}
	*w.out = (*w.out)[:0]
}

// FlushError sends what the handler wrote so far.
func (w *responseWriter) FlushError() error {
	if !w.committed {
		w.commit(w.held(), false)
		w.emitPending()
	}
	w.flushOut()
	return w.err
}

func (w *responseWriter) Flush() { _ = w.FlushError() }

// SetReadDeadline and SetWriteDeadline are http.ResponseController's.
func (w *responseWriter) SetReadDeadline(t time.Time) error  { return w.c.nc.SetReadDeadline(t) }
func (w *responseWriter) SetWriteDeadline(t time.Time) error { return w.c.nc.SetWriteDeadline(t) }

// finish completes the answer when the handler has returned; keep says the
// connection may go on, else the answer says it closes. It says whether
// the answer went out whole.
func (w *responseWriter) finish(keep bool) bool {
	if !w.committed {
		if !keep {
			w.close = true
		}
		w.commit(w.held(), true)
		w.emitPending()
	}
	if w.chunked {
		b := append(*w.out, "0\r\n"...)
		for _, k := range w.trailers {
			for _, v := range w.hdr[k] {
				b = appendField(b, k, v)
			}
		}
		for k, vs := range w.hdr {
			if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && isToken(name) {
				for _, v := range vs {
					b = appendField(b, name, v)
				}
			}
		}
		*w.out = append(b, "\r\n"...)
	}
	w.flushOut()
	whole := w.err == nil && !w.close && (w.noBody || w.length < 0 || w.written == w.length)
	w.release()
	return whole
}

// abort ends an answer the handler gave up on (it panicked): what was
// committed goes out, cut short, and the connection is closed.
func (w *responseWriter) abort() {
	if w.committed {
		w.flushOut()
	}
	w.release()
}

func (w *responseWriter) release() {
	if w.out != nil {
		putOutBuffer(w.out)
		w.out = nil
	}
	if w.pending != nil {
		putOutBuffer(w.pending)
		w.pending = nil
	}
}

// The Date field, formatted once a second.
type dateEntry struct {
	sec int64
	s   string
}

var dateCache atomic.Pointer[dateEntry]

func appendDate(b []byte) []byte {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return append(b, d.s...)
	}
	d := &dateEntry{sec: now.Unix(), s: now.UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return append(b, d.s...)
}
