package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/httplimit"
)

// healthyTarget is a target that passes the health check on /up and hands
// every other request to h.
func healthyTarget(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/up" {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// framingBackend answers in the framings the fast path must carry.
func framingBackend(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/up", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "part1,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
		w.Header().Set("X-Sum", "abc")
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/hop", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, "hop")
	})
	mux.HandleFunc("/length", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	})
	mux.HandleFunc("/sized", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		io.WriteString(w, strings.Repeat("z", 100000))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestFastPathFraming(t *testing.T) {
	back := framingBackend(t)
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app", "app.localhost"), back.Listener.Addr().String())
	c := testClient()
	do := func(method, path string, body ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, front.URL+path, strings.NewReader(strings.Join(body, "")))
		req.Host = "app.localhost"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: body: %v", method, path, err)
		}
		return resp, string(b)
	}

	resp, body := do("GET", "/chunked")
	if body != "part1,part2" || resp.Trailer.Get("X-Sum") != "abc" {
		t.Errorf("chunked with a trailer: body %q trailer %v, want part1,part2 and X-Sum abc", body, resp.Trailer)
	}
	for i := range 3 { // a closed connection is not reused
		if resp, body = do("GET", "/close"); resp.StatusCode != 200 || body != "bye" {
			t.Errorf("Connection: close, request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if resp, body = do("GET", "/nocontent"); resp.StatusCode != 204 || body != "" {
		t.Errorf("204: %d %q", resp.StatusCode, body)
	}
	if resp, body = do("HEAD", "/sized"); resp.StatusCode != 200 || body != "" || resp.ContentLength != 100000 {
		t.Errorf("HEAD: %d %q length %d, want 200, no body, length 100000", resp.StatusCode, body, resp.ContentLength)
	}
	if _, body = do("GET", "/sized"); len(body) != 100000 || strings.Trim(body, "z") != "" {
		t.Errorf("100000-byte body: got %d bytes", len(body))
	}
	// Bodies on both sides of fastBodyMax: read whole, or streamed by the
	// reverse proxy.
	for _, n := range []int{1, fastBodyMax, fastBodyMax + 1, 100000} {
		if _, body = do("POST", "/length", strings.Repeat("u", n)); body != fmt.Sprint(n) {
			t.Errorf("POST of %d bytes: the target read %s", n, body)
		}
	}
	resp, body = do("GET", "/hop")
	if body != "hop" || resp.Header.Get("X-Kept") != "yes" || resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" {
		t.Errorf("hop-by-hop fields: %q %v, want X-Kept only", body, resp.Header)
	}
}

// TestFastPathBodyUntilClose: an HTTP/1.0 answer without a length ends
// with the connection, and the next request gets a fresh one.
func TestFastPathBodyUntilClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if req.URL.Path == "/up" {
						io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
						continue
					}
					io.WriteString(conn, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
					return
				}
			}()
		}
	}()
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app", "app.localhost"), ln.Addr().String())
	for i := range 3 {
		if code, body := MustGet(t, testClient(), front, "app.localhost", "/"); code != 200 || body != "until the end" {
			t.Errorf("request %d: %d %q, want 200 \"until the end\"", i, code, body)
		}
	}
}

// TestFastPathReusesAndRecoversConnections: sequential requests share one
// upstream connection; after the target closes its idle connections, a GET
// (sent again on a fresh connection) and a POST (which gets only a
// connection that is still open) both succeed.
func TestFastPathReusesAndRecoversConnections(t *testing.T) {
	// The upstream connections that carried proxied requests (the health
	// checker's have their own User-Agent).
	var mu sync.Mutex
	conns := map[string]bool{}
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.UserAgent() != "gantry-proxy-health" {
			mu.Lock()
			conns[r.RemoteAddr] = true
			mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer back.Close()
	rc := fastRoute("app", "app.localhost")
	rc.Health.Path = "/"
	rc.Health.Interval = 1 << 40 // no probe during the test after the first round
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, rc, back.Listener.Addr().String())
	c := testClient()
	send := func(method string) (int, string) {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"n":1}`)
		}
		req, _ := http.NewRequest(method, front.URL+"/", body)
		req.Host = "app.localhost"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 20 {
		send(http.MethodGet)
	}
	mu.Lock()
	n := len(conns)
	mu.Unlock()
	if n != 1 {
		t.Errorf("20 sequential requests used %d upstream connections, want 1", n)
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		back.CloseClientConnections()
		for i := range 3 {
			if code, body := send(method); code != 200 || body != "ok" {
				t.Errorf("%s %d after the target closed its connections: %d %q, want 200 ok", method, i, code, body)
			}
		}
	}
}

// TestFastPathSendsWhatTheReverseProxySends: the upstream sees the same
// request line, Host and fields from both paths (less the Accept-Encoding
// that http.Transport adds on its own).
func TestFastPathSendsWhatTheReverseProxySends(t *testing.T) {
	seen := make(chan string, 1)
	back := healthyTarget(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var lines []string
		for k, vs := range r.Header {
			if k != "Accept-Encoding" && k != "X-Request-Id" {
				lines = append(lines, fmt.Sprintf("%s: %q", k, vs))
			}
		}
		slices.Sort(lines)
		seen <- fmt.Sprintf("%s %s %s host=%s length=%d body=%q\n%s", r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, b, strings.Join(lines, "\n"))
	})
	fast, fastFront := MustRouter(t, Config{})
	legacy, legacyFront := MustRouter(t, Config{})
	legacy.legacyForward = true
	for _, r := range []*Router{fast, legacy} {
		MustDeploy(t, r, fastRoute("app", "app.localhost"), back.Listener.Addr().String())
	}
	send := func(front *httptest.Server, method, path, body string, header map[string]string) string {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, front.URL+path, rd)
		req.Host = "app.localhost"
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := testClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return <-seen
	}
	cases := []struct {
		method, path, body string
		header             map[string]string
	}{
		{"GET", "/a/b%20c?x=1&y=%2F", "", map[string]string{"Accept": "text/html", "Cookie": "s=1"}},
		{"POST", "/form", "name=gantry", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
		{"PUT", "/empty", "", nil},
		{"DELETE", "/thing/1", "", map[string]string{"Connection": "X-Hop", "X-Hop": "1", "Proxy-Authorization": "Basic eA==", "Forwarded": "for=1.2.3.4"}},
	}
	for _, tc := range cases {
		want := send(legacyFront, tc.method, tc.path, tc.body, tc.header)
		if got := send(fastFront, tc.method, tc.path, tc.body, tc.header); got != want {
			t.Errorf("%s %s: the upstream saw from the fast path\n%s\nand from the reverse proxy\n%s", tc.method, tc.path, got, want)
		}
	}
}

// TestFastPathServesHTTP2Clients: over TLS, HTTP/2 clients are served on
// the fast path (the target still speaks HTTP/1.1), streams included.
func TestFastPathServesHTTP2Clients(t *testing.T) {
	r := New(Config{})
	front := httptest.NewUnstartedServer(r)
	front.Config = NewServer(r, httplimit.Limits{})
	front.EnableHTTP2 = true
	front.StartTLS()
	t.Cleanup(func() {
		front.Close()
		r.Close()
	})
	MustDeploy(t, r, fastRoute("app", "app.localhost"), MustBackend(t, "a").addr())
	c := front.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	get := func(path string, body io.Reader) *http.Response {
		t.Helper()
		method := http.MethodGet
		if body != nil {
			method = http.MethodPost
		}
		req, _ := http.NewRequestWithContext(ctx, method, front.URL+path, body)
		req.Host = "app.localhost"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			t.Fatalf("%s: answered over %s, want HTTP/2", path, resp.Proto)
		}
		return resp
	}
	for _, body := range []io.Reader{nil, strings.NewReader("small body")} {
		resp := get("/", body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "a" {
			t.Errorf("HTTP/2 request: %d %q, want 200 \"a\"", resp.StatusCode, b)
		}
	}
	// The backend waits 5 s after its first event: reading it within the
	// 3 s of ctx proves it was not held back.
	resp := get("/sse?n=3&gap=5000", nil)
	defer resp.Body.Close()
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "data: 0\n" {
		t.Errorf("first event over HTTP/2 = %q, %v; want it before the next is sent", line, err)
	}
}

// TestFastPathAsksASlowTargetOnce: a GET on a pooled connection that times
// out waiting for its answer gets 504 and is not sent again, never before
// the timeout: the deadline the connection's first exchange armed (see
// armHeadDeadline) does not cut the next one short.
func TestFastPathAsksASlowTargetOnce(t *testing.T) {
	var slowHits atomic.Int64
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			slowHits.Add(1)
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	}))
	defer back.Close()
	r, front := MustRouter(t, Config{ResponseHeaderTimeout: 200 * time.Millisecond})
	MustDeploy(t, r, fastRoute("app", "app.localhost"), back.Listener.Addr().String())
	c := testClient()
	if code, _ := MustGet(t, c, front, "app.localhost", "/"); code != 200 { // pools a connection
		t.Fatalf("first request: %d", code)
	}
	time.Sleep(30 * time.Millisecond) // past the sixteenth the deadline may be late
	begin := time.Now()
	if code, _ := MustGet(t, c, front, "app.localhost", "/slow"); code != http.StatusGatewayTimeout {
		t.Errorf("slow target: %d, want 504", code)
	}
	if took := time.Since(begin); took < 200*time.Millisecond {
		t.Errorf("504 after %v, before the 200ms timeout", took)
	}
	if n := slowHits.Load(); n != 1 {
		t.Errorf("the slow target was asked %d times, want once", n)
	}
}

// TestFastPathPassesEarlyHints: a 103 answer reaches the client with its
// own fields, and the final answer keeps the router's X-Request-ID.
func TestFastPathPassesEarlyHints(t *testing.T) {
	back := healthyTarget(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		io.WriteString(w, "page")
	})
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app", "app.localhost"), back.Listener.Addr().String())
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, front.URL+"/", nil)
	req.Host = "app.localhost"
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := []string{"103 </app.css>; rel=preload"}; !slices.Equal(hints, want) {
		t.Errorf("informational answers %q, want %q", hints, want)
	}
	if string(b) != "page" || resp.Header.Get("Link") != "" || resp.Header.Get(RequestIDHeader) == "" {
		t.Errorf("final answer %q %v, want page with an X-Request-ID and no Link", b, resp.Header)
	}
}

// TestFastPathDropsIdleConnectionsOfAFailingTarget: when a target fails
// its health check, the connections pooled to it are closed.
func TestFastPathDropsIdleConnectionsOfAFailingTarget(t *testing.T) {
	b := MustBackend(t, "a")
	r, front := MustRouter(t, Config{})
	MustDeploy(t, r, fastRoute("app", "app.localhost"), b.addr())
	idle := func() int {
		r.mu.Lock()
		tg := r.routes["app"].targets[b.addr()]
		r.mu.Unlock()
		tg.conns.mu.Lock()
		defer tg.conns.mu.Unlock()
		return len(tg.conns.idle)
	}
	if code, _ := MustGet(t, testClient(), front, "app.localhost", "/"); code != 200 {
		t.Fatalf("got %d", code)
	}
	if n := idle(); n != 1 {
		t.Fatalf("%d idle connections after one request, want 1", n)
	}
	b.status.Store(503)
	waitFor(t, "the failing target's idle connections closed", 5*time.Second, func() bool { return idle() == 0 })
}
