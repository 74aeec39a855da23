package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequestIDMiddleware(t *testing.T) {
	tests := []struct {
		name, in string
		keep     bool
	}{
		{"absent", "", false},
		{"sane", "req-42_a.b:c", true},
		{"uuid", "3f2b6c1e-8a7d-4c1b-9e2f-0a1b2c3d4e5f", true},
		{"too long", strings.Repeat("a", 129), false},
		{"spaces", "a b", false},
		{"injection", "x\"><script>", false},
	}
	for _, tt := range tests {
		var seen string
		h := WithRequestIDMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = r.Header.Get(RequestIDHeader)
		}))
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if tt.in != "" {
			req.Header.Set(RequestIDHeader, tt.in)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if tt.keep && seen != tt.in {
			t.Errorf("%s: upstream saw %q, want %q kept", tt.name, seen, tt.in)
		}
		if !tt.keep && (seen == tt.in || len(seen) != 32) {
			t.Errorf("%s: upstream saw %q, want a fresh 32-hex id", tt.name, seen)
		}
		if got := rec.Header().Get(RequestIDHeader); got != seen {
			t.Errorf("%s: response id %q differs from upstream id %q", tt.name, got, seen)
		}
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := newRequestID()
		if seen[id] {
			t.Fatalf("duplicate request id %q after %d", id, i)
		}
		seen[id] = true
	}
}
