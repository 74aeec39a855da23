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
		h := req.Header
		if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
			if prior := h.Values("X-Forwarded-For"); len(prior) > 0 {
				ip = joinComma(prior) + ", " + ip
			}
			h.Set("X-Forwarded-For", ip)
		}
		proto := "http"
		if req.TLS != nil {
			proto = "https"
		}
		h.Set("X-Forwarded-Proto", proto)
		h.Set("X-Forwarded-Host", req.Host)
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
