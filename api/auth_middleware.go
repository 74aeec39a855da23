package api

import (
	"net/http"
	"strings"

	"github.com/gantry-dev/gantry"
)

// withAuth lets a request through to next only when its identity holds the
// route's permission, on the environment of the path when the route has
// one, and the permission the route declares on each environment its body
// names. It answers 401 when no known credential comes with the request and
// 403 naming the missing permission otherwise; both are audited.
func (s *Server) withAuth(rt route, next http.Handler) http.Handler {
	if rt.perm == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.identify(r)
		if err != nil {
			s.auditDenied(r, rt, "unauthenticated", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="gantry"`)
			s.fail(w, r, err)
			return
		}
		uses, err := touchedEnvs(rt, r)
		if err == nil {
			err = authorize(id, uses)
		}
		if err != nil {
			s.auditDenied(r, rt, id.Name, err)
			s.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(gantry.WithIdentity(r.Context(), id)))
	})
}

// identify returns who makes r: the identity its context already carries
// (set by the unix socket's listener or the dashboard, never by a client),
// else the holder of its bearer token.
func (s *Server) identify(r *http.Request) (*gantry.Identity, error) {
	if id := gantry.IdentityFrom(r.Context()); id != nil {
		return id, nil
	}
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if h == "" || !ok || secret == "" {
		return nil, gantry.Errorf(gantry.EUNAUTHORIZED, "this request needs a token: pass --token or set GANTRY_TOKEN (create one with `gantry token create` on the server's machine)")
	}
	if s.Tokens == nil {
		return nil, gantry.Errorf(gantry.EUNAUTHORIZED, "unknown token")
	}
	t, err := s.Tokens.FindTokenByHash(r.Context(), gantry.HashToken(strings.TrimSpace(secret)))
	if gantry.ErrorCode(err) == gantry.ENOTFOUND {
		return nil, gantry.Errorf(gantry.EUNAUTHORIZED, "unknown token (revoked, or never created on this server)")
	} else if err != nil {
		return nil, err
	}
	return gantry.TokenIdentity(t), nil
}
