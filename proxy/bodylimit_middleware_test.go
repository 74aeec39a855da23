package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// withState puts a request state in req's context, as the router does.
func withState(req *http.Request, rs *requestState) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), requestStateKey{}, rs))
}

func TestBodyLimitMiddleware(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		contentLength int64
		wantCode      int
		wantRead      string
	}{
		{"under", "hello", 5, 200, "hello"},
		{"at limit", "0123456789", 10, 200, "0123456789"},
		{"declared over", "0123456789x", 11, 413, ""},
		{"unknown length over", "0123456789x", -1, 413, ""},
	}
	for _, tt := range tests {
		var read string
		h := WithBodyLimitMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				bodyTooLarge(w, mbe.Limit)
				return
			}
			read = string(b)
		}))
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
		req.ContentLength = tt.contentLength
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, withState(req, &requestState{maxBody: 10}))
		if rec.Code != tt.wantCode || read != tt.wantRead {
			t.Errorf("%s: got %d read %q, want %d read %q", tt.name, rec.Code, read, tt.wantCode, tt.wantRead)
		}
		if rec.Code == 413 && !strings.Contains(rec.Body.String(), "10 bytes") {
			t.Errorf("%s: 413 body %q does not state the limit", tt.name, rec.Body.String())
		}
	}
}
