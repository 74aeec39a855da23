package proxy

import (
	"net/http"
	"strconv"
)

// WithBodyLimitMiddleware answers 413 when the route's body limit is
// exceeded: at once when Content-Length says so, and otherwise when reading
// the body crosses the limit (the reverse proxy maps that error to 413).
// Nothing is buffered either way.
func WithBodyLimitMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rs := requestStateFrom(req.Context())
		if rs == nil || rs.maxBody <= 0 {
			next.ServeHTTP(w, req)
			return
		}
		if req.ContentLength > rs.maxBody {
			bodyTooLarge(w, rs.maxBody)
			return
		}
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = http.MaxBytesReader(w, req.Body, rs.maxBody)
		}
		next.ServeHTTP(w, req)
	})
}

func bodyTooLarge(w http.ResponseWriter, limit int64) {
	// The connection may hold the rest of an oversize body; close it rather
	// than read it all.
	w.Header().Set("Connection", "close")
	plainError(w, http.StatusRequestEntityTooLarge, "request body too large: the limit is "+strconv.FormatInt(limit, 10)+" bytes")
}
