package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// RequestIDHeader carries a request's id to the upstream and back to the client.
const RequestIDHeader = "X-Request-ID"

// WithRequestIDMiddleware keeps a client's X-Request-ID when it is sane and
// replaces it with a fresh one otherwise, so ids in logs can be trusted not
// to carry injected text. The id is also set on the response.
func WithRequestIDMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		id := req.Header.Get(RequestIDHeader)
		if !saneRequestID(id) {
			id = newRequestID()
			req.Header.Set(RequestIDHeader, id)
		}
		w.Header().Set(RequestIDHeader, id)
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

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
