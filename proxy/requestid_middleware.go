package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sync/atomic"
)

// RequestIDHeader carries a request's id to the upstream and back to the client.
const RequestIDHeader = "X-Request-ID"

// requestIDKey is RequestIDHeader as http.Header keys it.
const requestIDKey = "X-Request-Id"

// WithRequestIDMiddleware keeps a client's X-Request-ID when it is sane and
// replaces it with a fresh one otherwise, so ids in logs can be trusted not
// to carry injected text. The id is also set on the response.
func WithRequestIDMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// The canonical key, written directly: one value slice for both
		// directions, no canonicalisation on the hot path.
		v := req.Header[requestIDKey]
		if len(v) == 0 || !saneRequestID(v[0]) {
			v = []string{newRequestID()}
			req.Header[requestIDKey] = v
		}
		w.Header()[requestIDKey] = v[:1:1]
		next.ServeHTTP(w, req)
	})
}

// saneRequestID accepts 1 to 128 characters of a conservative token set.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '=', c == '/':
		default:
			return false
		}
	}
	return true
}

// Request ids are a random per-process prefix and a counter: unique, not
// guessable across restarts, and without a getrandom call per request on
// the router's hot path.
var (
	requestIDPrefix = func() string {
		var b [8]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:])
	}()
	requestIDCounter atomic.Uint64
)

func newRequestID() string {
	var buf [32]byte
	n := copy(buf[:], requestIDPrefix)
	v := requestIDCounter.Add(1)
	for i := 31; i >= n; i-- {
		buf[i] = "0123456789abcdef"[v&15]
		v >>= 4
	}
	return string(buf[:])
}
