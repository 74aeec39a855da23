package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// namedBackend answers every request with its name and never blocks, so a
// fuzzed path cannot reach a handler that waits (MustBackend's /hang).
func namedBackend(tb testing.TB, name string) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		_, _ = io.WriteString(w, name)
	}))
	tb.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// FuzzRouter sends requests with a fuzzed Host header, path and header
// values through the router's whole handler (lookup by host, preview
// hosts, path prefixes, middlewares, the reverse proxy) to real backends.
// It holds that nothing panics, that the status is one the router means
// to give, and that a request the router forwards reaches the backend of
// the route that Lookup names for its host and path, on the preview set
// for a preview host.
func FuzzRouter(f *testing.F) {
	r := New(Config{HealthPath: "/.gantry/up"})
	f.Cleanup(func() { r.Close() })
	routes := []struct {
		rc     gantry.Route
		active string
	}{
		{gantry.Route{Name: "prod", Hosts: []string{"shop.example.com", "shop.localhost"}, PreviewHosts: []string{"preview.shop.localhost"}}, "prod"},
		{gantry.Route{Name: "api", Hosts: []string{"shop.example.com"}, PathPrefix: "/api"}, "api"},
		{gantry.Route{Name: "tenants", Hosts: []string{"*.tenants.example.com"}, MaxBodyBytes: 16}, "tenants"},
		{gantry.Route{Name: "secure", Hosts: []string{"secure.example.com"}, RedirectHTTPS: true}, "secure"},
	}
	for _, rt := range routes {
		rc := rt.rc
		rc.Health = gantry.HealthCheck{Path: "/up", Interval: time.Second, Timeout: time.Second}
		rc.DeployTimeout, rc.DrainTimeout = 10*time.Second, time.Second
		if _, err := r.Deploy(context.Background(), rc, []string{namedBackend(f, rt.active)}); err != nil {
			f.Fatal(err)
		}
	}
	if err := r.SetPreview(context.Background(), "prod", []string{namedBackend(f, "prod-preview")}); err != nil {
		f.Fatal(err)
	}
	for _, s := range [][4]string{
		{"shop.example.com", "/", "", ""},
		{"SHOP.Example.COM.:8080", "/api/x", "1.2.3.4", "abc"},
		{"shop.example.com", "/apix", "", ""},
		{"preview.shop.localhost", "/", "", ""},
		{"a.tenants.example.com", "/upload", "", "x"},
		{"a.b.tenants.example.com", "/", "", ""},
		{"secure.example.com", "/login?next=/", "", ""},
		{"[::1]:80", "/", "", ""},
		{"shop.example.com\r\nX: y", "/", "", ""},
		{"shop.example.com", "/../../etc/passwd", "", ""},
		{"shop.example.com", "/.gantry/up", "", ""},
		{"", "", "\x00", "\r\n"},
		{"shop.localhost", "//evil.example/%2e%2e", "for=1.2.3.4", "id\x7f"},
	} {
		f.Add(s[0], s[1], s[2], s[3], []byte("body"))
	}
	f.Fuzz(func(t *testing.T, host, path, xff, reqID string, body []byte) {
		req := &http.Request{
			Method:     http.MethodPost,
			URL:        &url.URL{Path: path},
			Proto:      "HTTP/1.1",
			ProtoMajor: 1, ProtoMinor: 1,
			Header:        http.Header{"X-Forwarded-For": {xff}, "X-Request-Id": {reqID}, "Forwarded": {xff}},
			Host:          host,
			RemoteAddr:    "192.0.2.1:1234",
			Body:          io.NopCloser(strings.NewReader(string(body))),
			ContentLength: int64(len(body)),
		}
		req = req.WithContext(context.Background())
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		got := w.Body.String()
		switch w.Code {
		case http.StatusOK:
			if path == "/.gantry/up" {
				return
			}
			name, ok := r.Lookup(host, path)
			if !ok {
				t.Fatalf("Host %q path %q: 200 %q, but Lookup finds no route", host, path, got)
			}
			if want := backendOf(r, host, name); got != want {
				t.Fatalf("Host %q path %q: served by %q, want %q (route %s)", host, path, got, want, name)
			}
		case http.StatusPermanentRedirect:
			if name, _ := r.Lookup(host, path); name != "secure" {
				t.Fatalf("Host %q path %q: redirected, but the route is %q", host, path, name)
			}
			loc := w.Header().Get("Location")
			if strings.ContainsAny(loc, "\r\n") || !strings.HasPrefix(loc, "https://") {
				t.Fatalf("Host %q path %q: redirect to %q", host, path, loc)
			}
		case http.StatusBadRequest:
			if _, ok := normalizeHost(host); ok && validHeaderValues(xff, reqID) {
				t.Fatalf("Host %q path %q xff %q id %q: 400 %q for a valid host and headers", host, path, xff, reqID, got)
			}
		case http.StatusNotFound:
			if name, ok := r.Lookup(host, path); ok {
				t.Fatalf("Host %q path %q: 404, but Lookup names route %s", host, path, name)
			}
		case http.StatusRequestEntityTooLarge:
			if name, _ := r.Lookup(host, path); name != "tenants" || len(body) <= 16 {
				t.Fatalf("Host %q path %q: 413 for %d bytes on route %q", host, path, len(body), name)
			}
		case http.StatusBadGateway:
			// The transport refuses to send a header value with control
			// characters; the router answers 502 rather than forward it.
			if validHeaderValues(xff, reqID) && validPath(path) {
				t.Fatalf("Host %q path %q xff %q id %q: 502 %q with valid headers", host, path, xff, reqID, got)
			}
		default:
			t.Fatalf("Host %q path %q xff %q id %q: unexpected status %d %q", host, path, xff, reqID, w.Code, got)
		}
	})
}

// backendOf names the backend that should answer host on route name.
func backendOf(r *Router, host, name string) string {
	if name == "prod" {
		if h, _ := normalizeHost(host); h == "preview.shop.localhost" {
			return "prod-preview"
		}
	}
	return name
}

// validHeaderValues says whether each value may be sent in an HTTP header:
// no control characters but tab.
func validHeaderValues(vs ...string) bool {
	for _, v := range vs {
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
	}
	return true
}

// validPath says whether path makes a request line the transport sends.
func validPath(path string) bool { return validHeaderValues(path) }
