package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/httplimit"
)

// startLoop serves h on the router's own loop; it returns the address.
func startLoop(tb testing.TB, h http.Handler, limits httplimit.Limits) (*Server, string) {
	tb.Helper()
	srv := NewLoopServer(h, limits)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		srv.Close()
		<-done
	})
	return srv, ln.Addr().String()
}

// echoHandler answers "<method> <path> <body>".
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), b)
	})
}

func dialRaw(tb testing.TB, addr string) (net.Conn, *bufio.Reader) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func mustWrite(tb testing.TB, c net.Conn, s string) {
	tb.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		tb.Fatal(err)
	}
}

// readAnswer reads one response to a request of method; it returns the
// status, the body and the response.
func readAnswer(tb testing.TB, br *bufio.Reader, method string) (int, string, *http.Response) {
	tb.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		tb.Fatalf("reading the answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		tb.Fatalf("reading the body: %v", err)
	}
	return resp.StatusCode, string(b), resp
}

// TestLoopPipelining: requests sent back to back in one write, one with a
// body, are answered in order on the same connection.
func TestLoopPipelining(t *testing.T) {
	_, addr := startLoop(t, echoHandler(), httplimit.Limits{})
	c, br := dialRaw(t, addr)
	mustWrite(t, c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /2?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"GET /1 ", "POST /2?q=1 hello", "GET /3 "} {
		if code, body, _ := readAnswer(t, br, "GET"); code != 200 || body != want {
			t.Errorf("pipelined answer %d %q, want 200 %q", code, body, want)
		}
	}
}

// TestLoopPartialHeads: a head and a body that arrive in pieces are put
// together.
func TestLoopPartialHeads(t *testing.T) {
	_, addr := startLoop(t, echoHandler(), httplimit.Limits{})
	c, br := dialRaw(t, addr)
	for _, part := range []string{"PO", "ST /x HTTP/1.1\r\nHo", "st: a\r\nContent-Len", "gth: 6\r\n\r", "\n", "abc", "def"} {
		mustWrite(t, c, part)
		time.Sleep(5 * time.Millisecond) // separate segments, not a timing check
	}
	if code, body, _ := readAnswer(t, br, "POST"); code != 200 || body != "POST /x abcdef" {
		t.Errorf("answer %d %q, want 200 %q", code, body, "POST /x abcdef")
	}
}

// asNetHTTPCases are raw requests, malformed or unusual, that the loop
// must answer as net/http does.
var asNetHTTPCases = map[string]string{
	"ordinary":              "GET /a?b=c HTTP/1.1\r\nHost: a\r\n\r\n",
	"escaped path":          "GET /a%20b HTTP/1.1\r\nHost: a\r\n\r\n",
	"bad escape":            "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n",
	"no host":               "GET / HTTP/1.1\r\n\r\n",
	"two hosts":             "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"bad host":              "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"bad length":            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
	"two lengths":           "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	"bad method":            "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"bad field name":        "GET / HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n",
	"control in value":      "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
	"folded line":           "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
	"HTTP/1.0":              "GET / HTTP/1.0\r\nHost: a\r\n\r\n",
	"HTTP/2 preface":        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"absolute form":         "GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n",
	"bare LF":               "GET /lf HTTP/1.1\nHost: a\n\n",
	"space in target":       "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
	"unknown coding":        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
	"chunked":               "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"length and chunked":    "POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"head over the buffer":  "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("x", 8<<10) + "\r\n\r\n",
	"head over the maximum": "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("x", 70<<10) + "\r\n\r\n",
	"lower-case fields":     "POST /l HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\nok",
	"query with a hash":     "GET /q?a#b HTTP/1.1\r\nHost: a\r\n\r\n",
	"empty query":           "GET /q? HTTP/1.1\r\nHost: a\r\n\r\n",
}

// answerPair serves echoHandler on the loop and on net/http, and answers
// a raw request from each as "status body" (or "no answer").
func answerPair(tb testing.TB) func(raw string) (loop, std string) {
	_, loopAddr := startLoop(tb, echoHandler(), httplimit.Limits{ReadHeaderTimeout: time.Second})
	std := httptest.NewUnstartedServer(nil)
	std.Config = NewServer(echoHandler(), httplimit.Limits{ReadHeaderTimeout: time.Second})
	std.Start()
	tb.Cleanup(std.Close)
	answer := func(addr, raw string) string {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return "dial: " + err.Error()
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		_, _ = io.WriteString(c, raw)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "no answer"
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return fmt.Sprintf("%d %q", resp.StatusCode, b)
	}
	return func(raw string) (string, string) {
		return answer(loopAddr, raw), answer(std.Listener.Addr().String(), raw)
	}
}

// TestLoopAnswersAsNetHTTP: malformed and unusual requests get the answer
// net/http gives them (the loop hands most over), and ordinary ones the
// same answer.
func TestLoopAnswersAsNetHTTP(t *testing.T) {
	answer := answerPair(t)
	for name, raw := range asNetHTTPCases {
		if loop, std := answer(raw); loop != std {
			t.Errorf("%s: the loop answered %s, net/http %s", name, loop, std)
		}
	}
}

// FuzzLoopAnswersAsNetHTTP: any request head gets from the loop the answer
// net/http gives.
//
//	go test ./proxy -run '^$' -fuzz FuzzLoopAnswersAsNetHTTP -fuzztime 60s
func FuzzLoopAnswersAsNetHTTP(f *testing.F) {
	for _, raw := range asNetHTTPCases {
		if len(raw) < 1<<10 {
			f.Add(raw)
		}
	}
	answer := answerPair(f)
	f.Fuzz(func(t *testing.T, raw string) {
		if len(raw) > 4<<10 || !strings.Contains(raw, "\n\n") && !strings.Contains(raw, "\r\n\r\n") {
			return // incomplete heads wait for the header timeout
		}
		if loop, std := answer(raw); loop != std {
			t.Errorf("%q: the loop answered %s, net/http %s", raw, loop, std)
		}
	})
}

// TestLoopBodyFraming: the framing of answers (sized, computed, chunked,
// none for HEAD, 204 and 304, 1xx before the final one, trailers) on one
// keep-alive connection, which a stray byte would break.
func TestLoopBodyFraming(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sized":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "sized")
		case "/small":
			io.WriteString(w, "<html>small</html>")
		case "/large":
			w.Write(bytes.Repeat([]byte("L"), 100<<10))
		case "/flushed":
			io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		case "/hints":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "final")
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		default:
			io.WriteString(w, "hello")
		}
	})
	_, addr := startLoop(t, h, httplimit.Limits{})
	c, br := dialRaw(t, addr)
	get := func(method, path string) (int, string, *http.Response) {
		t.Helper()
		mustWrite(t, c, method+" "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		return readAnswer(t, br, method)
	}
	if code, body, resp := get("GET", "/sized"); code != 200 || body != "sized" || resp.ContentLength != 5 {
		t.Errorf("sized: %d %q length %d", code, body, resp.ContentLength)
	}
	if code, body, resp := get("GET", "/small"); code != 200 || body != "<html>small</html>" || resp.ContentLength != 18 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || resp.Header.Get("Date") == "" {
		t.Errorf("small: %d %q length %d fields %v; want a computed length, a sniffed type and a date", code, body, resp.ContentLength, resp.Header)
	}
	if code, body, resp := get("GET", "/large"); code != 200 || len(body) != 100<<10 || len(resp.TransferEncoding) != 1 {
		t.Errorf("large: %d, %d bytes, coding %v; want 102400 chunked", code, len(body), resp.TransferEncoding)
	}
	if code, body, resp := get("GET", "/flushed"); code != 200 || body != "part1,part2" || len(resp.TransferEncoding) != 1 {
		t.Errorf("flushed: %d %q coding %v; want chunked", code, body, resp.TransferEncoding)
	}
	if code, body, resp := get("HEAD", "/"); code != 200 || body != "" || resp.ContentLength != 5 {
		t.Errorf("HEAD: %d %q length %d; want 200, no body, the GET's length", code, body, resp.ContentLength)
	}
	for _, p := range []string{"/204", "/304"} {
		if code, body, _ := get("GET", p); fmt.Sprint(code) != p[1:] || body != "" {
			t.Errorf("%s: %d %q", p, code, body)
		}
	}
	if code, _, resp := get("GET", "/hints"); code != http.StatusEarlyHints || resp.Header.Get("Link") == "" {
		t.Errorf("hints: %d %v, want 103 with its Link", code, resp.Header)
	}
	if code, body, resp := readAnswer(t, br, "GET"); code != 200 || body != "final" || resp.Header.Get("Link") != "" {
		t.Errorf("after the hints: %d %q %v", code, body, resp.Header)
	}
	if code, body, resp := get("GET", "/trailer"); code != 200 || body != "body" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("trailer: %d %q %v", code, body, resp.Trailer)
	}
	if code, body, _ := get("GET", "/last"); code != 200 || body != "hello" {
		t.Errorf("last request on the connection: %d %q", code, body)
	}
}

// TestLoopHandsOverMidConnection: a request the loop does not carry (a
// chunked body, Expect: 100-continue) after one it did is served by
// net/http on the same connection, and the connection goes on.
func TestLoopHandsOverMidConnection(t *testing.T) {
	_, addr := startLoop(t, echoHandler(), httplimit.Limits{})
	c, br := dialRaw(t, addr)
	mustWrite(t, c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body, _ := readAnswer(t, br, "GET"); body != "GET /first " {
		t.Fatalf("first: %q", body)
	}
	mustWrite(t, c, "POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: a\r\n\r\n")
	for _, want := range []string{"POST /chunked abcde", "GET /after "} {
		if code, body, _ := readAnswer(t, br, "GET"); code != 200 || body != want {
			t.Errorf("answer %d %q, want %q", code, body, want)
		}
	}
	mustWrite(t, c, "PUT /expect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
	if code, _, _ := readAnswer(t, br, "PUT"); code != http.StatusContinue {
		t.Fatalf("expect: %d, want 100", code)
	}
	mustWrite(t, c, "data")
	if code, body, _ := readAnswer(t, br, "PUT"); code != 200 || body != "PUT /expect data" {
		t.Errorf("after 100 Continue: %d %q", code, body)
	}
}

// TestLoopConnectionClose: Connection: close from the client or from the
// handler ends the connection after the answer, which says so.
func TestLoopConnectionClose(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bye" {
			w.Header().Set("Connection", "close")
		}
		io.WriteString(w, "ok")
	})
	_, addr := startLoop(t, h, httplimit.Limits{})
	for name, raw := range map[string]string{
		"client":  "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n",
		"handler": "GET /bye HTTP/1.1\r\nHost: a\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		c, br := dialRaw(t, addr)
		mustWrite(t, c, raw)
		if code, _, resp := readAnswer(t, br, "GET"); code != 200 || !resp.Close {
			t.Errorf("%s: %d close=%v, want an answer that closes", name, code, resp.Close)
		}
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("%s: after the answer read %d bytes, %v; want the end", name, n, err)
		}
	}
}

// TestLoopSlowClients: a head that does not arrive within the header
// timeout and a connection idle past the idle timeout are closed without
// an answer; an idle connection gives its buffer back and still serves.
func TestLoopSlowClients(t *testing.T) {
	srv, addr := startLoop(t, echoHandler(), httplimit.Limits{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: time.Second})
	c, br := dialRaw(t, addr)
	mustWrite(t, c, "GET / HTTP/1.1\r\nHost: a\r\n")
	if n, err := br.Read(make([]byte, 1)); err == nil {
		t.Errorf("a head cut short: read %d bytes, want the connection closed", n)
	}
	c, br = dialRaw(t, addr)
	mustWrite(t, c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswer(t, br, "GET")
	waitFor(t, "the idle connection's buffer given back", 5*time.Second, func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for sc := range srv.conns {
			if sc.phase.Load() == phaseIdle {
				// The conn's goroutine is parked in waitReadable,
				// holding neither its buffer nor its last request.
				return !sc.buffered() && !sc.hasST.Load()
			}
		}
		return false
	})
	mustWrite(t, c, "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
	if _, body, _ := readAnswer(t, br, "GET"); body != "GET /2 " {
		t.Errorf("after the buffer went back: %q", body)
	}
	if n, err := br.Read(make([]byte, 1)); err == nil {
		t.Errorf("idle past the timeout: read %d bytes, want the connection closed", n)
	}
}

// TestLoopReleasesMemoryWhenQuiet: connections that park make the server
// return free memory to the system once no request has started for
// quietAfter, and not while requests keep coming: on the loop, or on a
// connection handed over to net/http (a chunked body).
func TestLoopReleasesMemoryWhenQuiet(t *testing.T) {
	for name, busy := range map[string]string{
		"loop":     "GET /busy HTTP/1.1\r\nHost: a\r\n\r\n",
		"net/http": "POST /busy HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			srv, addr := startLoop(t, echoHandler(), httplimit.Limits{})
			for i := range 20 {
				c, br := dialRaw(t, addr)
				mustWrite(t, c, fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i))
				readAnswer(t, br, "GET")
			}
			// One client goes on asking while the others park: every 50 ms,
			// a tenth of quietAfter, so that a slow machine still asks in
			// every window the server looks at.
			c, br := dialRaw(t, addr)
			busyUntil := time.Now().Add(3 * quietAfter)
			for time.Now().Before(busyUntil) {
				mustWrite(t, c, busy)
				readAnswer(t, br, "GET")
				time.Sleep(50 * time.Millisecond)
			}
			if n := srv.quiet.count.Load(); n != 0 {
				t.Fatalf("released memory %d times while a request started every 50 ms", n)
			}
			waitFor(t, "memory released once quiet", 5*time.Second, func() bool { return srv.quiet.count.Load() == 1 })
		})
	}
}

// TestLoopClientGoneSettlesCounters: a client that leaves while the target
// has not answered, in the middle of a streamed answer, or in the middle of
// its request's body, leaves no request counted in flight.
func TestLoopClientGoneSettlesCounters(t *testing.T) {
	b := MustBackend(t, "a")
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app", "app.localhost"), b.addr())
	r.mu.Lock()
	tg := r.routes["app"].targets[b.addr()]
	r.mu.Unlock()
	addr := front.Listener.Addr().String()

	c, _ := dialRaw(t, addr)
	mustWrite(t, c, "GET /hang HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	waitFor(t, "the target to hold the request", 5*time.Second, func() bool { return tg.inflight.Load() == 1 })
	c.Close()
	waitFor(t, "no request in flight after the client left a hanging one", 5*time.Second, func() bool { return tg.inflight.Load() == 0 })

	c, br := dialRaw(t, addr)
	mustWrite(t, c, "GET /sse?n=1000&gap=20 HTTP/1.1\r\nHost: app.localhost\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "data: 0\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	c.Close()
	waitFor(t, "no request in flight after the client left a stream", 5*time.Second, func() bool { return tg.inflight.Load() == 0 })

	// Bodies cut off: one the fast path reads whole first, one the
	// reverse proxy streams to the target.
	for _, size := range []int{8 << 10, 1 << 20} {
		c, _ := dialRaw(t, addr)
		mustWrite(t, c, fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: %d\r\n\r\n", size))
		mustWrite(t, c, strings.Repeat("x", 4<<10))
		waitFor(t, "the request to reach the router", 5*time.Second, func() bool { return tg.inflight.Load() == 1 })
		c.Close()
		waitFor(t, fmt.Sprintf("no request in flight after the client left a %d-byte body", size), 5*time.Second, func() bool { return tg.inflight.Load() == 0 })
	}
}

// TestLoopShutdown: Shutdown closes idle connections at once, lets the
// request in flight finish (its answer says the connection closes), and
// returns when no connection is left.
func TestLoopShutdown(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started.Store(true)
			<-release
		}
		io.WriteString(w, "done")
	})
	srv, addr := startLoop(t, h, httplimit.Limits{})
	idle, idleBR := dialRaw(t, addr)
	mustWrite(t, idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	readAnswer(t, idleBR, "GET")
	busy, busyBR := dialRaw(t, addr)
	mustWrite(t, busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	waitFor(t, "the slow request to start", 5*time.Second, started.Load)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	if n, err := idleBR.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection at shutdown: read %d, %v; want it closed", n, err)
	}
	close(release)
	if code, body, resp := readAnswer(t, busyBR, "GET"); code != 200 || body != "done" || !resp.Close {
		t.Errorf("request in flight at shutdown: %d %q close=%v", code, body, resp.Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// TestLoopTrailersAsNetHTTP: the trailers a handler declares reach the
// client as net/http sends them: fields that may not be trailers (RFC 9110
// section 6.5.1: routing, authentication, Content-Type, If-*) are left
// out, and an answer that declares any trailer is chunked even when
// none may be sent.
func TestLoopTrailersAsNetHTTP(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Trailer", r.URL.Query().Get("declare"))
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
		w.Header().Set("If-Match", "x")
		w.Header().Set("Content-Length", "4")
		w.Header().Set(http.TrailerPrefix+"X-Late", "late")
	})
	_, loopAddr := startLoop(t, h, httplimit.Limits{})
	std := httptest.NewUnstartedServer(nil)
	std.Config = NewServer(h, httplimit.Limits{})
	std.Start()
	t.Cleanup(std.Close)
	answer := func(addr, declare string) string {
		c, br := dialRaw(t, addr)
		defer c.Close()
		mustWrite(t, c, "GET /?declare="+url.QueryEscape(declare)+" HTTP/1.1\r\nHost: a\r\n\r\n")
		code, body, resp := readAnswer(t, br, "GET")
		return fmt.Sprintf("%d %q coding %v length %d type %q trailers %v", code, body, resp.TransferEncoding, resp.ContentLength, resp.Header.Get("Content-Type"), resp.Trailer)
	}
	for _, declare := range []string{"X-Sum", "Content-Type, X-Sum", "if-match,x-sum", "Content-Type", "Authorization"} {
		if loop, std := answer(loopAddr, declare), answer(std.Listener.Addr().String(), declare); loop != std {
			t.Errorf("Trailer: %s: the loop answered\n\t%s\nnet/http\n\t%s", declare, loop, std)
		}
	}
}
