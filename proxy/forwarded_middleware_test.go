package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestForwardedMiddleware(t *testing.T) {
	tests := []struct {
		name               string
		remote, priorXFF   string
		tls                bool
		clientProto        string
		wantXFF, wantProto string
	}{
		{"plain", "192.0.2.1:5555", "", false, "", "192.0.2.1", "http"},
		{"appends", "192.0.2.1:5555", "198.51.100.7", false, "", "198.51.100.7, 192.0.2.1", "http"},
		{"tls", "[2001:db8::1]:443", "", true, "", "2001:db8::1", "https"},
		{"proto not trusted", "192.0.2.1:5555", "", false, "https", "192.0.2.1", "http"},
	}
	for _, tt := range tests {
		var got http.Header
		h := WithForwardedMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header }))
		req := httptest.NewRequest(http.MethodGet, "http://shop.example.com/", nil)
		req.RemoteAddr = tt.remote
		if tt.priorXFF != "" {
			req.Header.Set("X-Forwarded-For", tt.priorXFF)
		}
		if tt.clientProto != "" {
			req.Header.Set("X-Forwarded-Proto", tt.clientProto)
		}
		if tt.tls {
			req.TLS = &tls.ConnectionState{}
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
		if g := got.Get("X-Forwarded-For"); g != tt.wantXFF {
			t.Errorf("%s: X-Forwarded-For = %q, want %q", tt.name, g, tt.wantXFF)
		}
		if g := got.Get("X-Forwarded-Proto"); g != tt.wantProto {
			t.Errorf("%s: X-Forwarded-Proto = %q, want %q", tt.name, g, tt.wantProto)
		}
		if g := got.Get("X-Forwarded-Host"); g != "shop.example.com" {
			t.Errorf("%s: X-Forwarded-Host = %q, want shop.example.com", tt.name, g)
		}
	}
}
