package proxy

import (
	"net"
	"net/http"
)

// WithForwardedMiddleware sets X-Forwarded-For (appending the client's
// address), X-Forwarded-Proto and X-Forwarded-Host. Proto and Host are
// overwritten, not trusted: the router is the edge, so a client must not be
// able to claim it came over HTTPS.
func WithForwardedMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Canonical keys written directly, the three values in one array.
		h := req.Header
		vals := make([]string, 3)
		if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
			if prior := h["X-Forwarded-For"]; len(prior) > 0 {
				ip = joinComma(prior) + ", " + ip
			}
			vals[0] = ip
			h["X-Forwarded-For"] = vals[0:1:1]
		}
		vals[1] = "http"
		if req.TLS != nil {
			vals[1] = "https"
		}
		h["X-Forwarded-Proto"] = vals[1:2:2]
		vals[2] = req.Host
		h["X-Forwarded-Host"] = vals[2:3:3]
		next.ServeHTTP(w, req)
	})
}

func joinComma(vs []string) string {
	s := vs[0]
	for _, v := range vs[1:] {
		s += ", " + v
	}
	return s
}
