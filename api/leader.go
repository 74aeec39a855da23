package api

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/gantry-dev/gantry"
)

// LeaderService is this server's hold on the lease of a store shared by
// several servers (deploy.Leader).
type LeaderService interface {
	// Leading reports whether this server runs deployments now.
	Leading() bool
	// Current is the lease as this server last saw it (nil before).
	Current() *gantry.Lease
	// NotLeaderError says which server runs deployments.
	NotLeaderError() error
}

// forwardedHeader marks a request one server forwarded to the leader, so
// that it is forwarded at most once.
const forwardedHeader = "X-Gantry-Forwarded-By"

// leaderOnly reports whether the endpoint is run by the leader only:
// everything that starts or acts on a deployment (and builds and imports,
// whose artifacts live beside the leader), and the status of a running
// canary, which only the leader knows. Other reads, approvals, locks,
// tokens, secrets and apps any server answers.
func leaderOnly(pattern string) bool {
	method, path, _ := strings.Cut(pattern, " ")
	if method == http.MethodGet {
		// A running canary's live figures are the leader's alone.
		return strings.HasSuffix(path, "/canary")
	}
	for _, any := range []string{"/secrets/", "/approvals", "/lock", "/v1/tokens", "/v1/routers/"} {
		if strings.Contains(path, any) {
			return false
		}
	}
	return strings.Contains(path, "/environments/{env}") || strings.HasPrefix(path, "/v1/apps/{app}/releases") ||
		path == "/v1/images/prune"
}

// withLeader sends a leader-only request that reaches a server which does
// not lead to the leader, as it came (its bearer token included), and
// streams the answer back: any server can be given to the CLI. A request
// without a bearer token (over the unix socket, from the dashboard) cannot
// be forwarded with its identity: it is answered 503 with the leader's
// address instead, as is a request when no server leads.
func (s *Server) withLeader(rt route, next http.Handler) http.Handler {
	if s.Leader == nil || !leaderOnly(rt.pattern) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Leader.Leading() {
			next.ServeHTTP(w, r)
			return
		}
		cur := s.Leader.Current()
		if cur == nil || cur.Addr == "" || r.Header.Get("Authorization") == "" || r.Header.Get(forwardedHeader) != "" {
			s.fail(w, r, s.Leader.NotLeaderError())
			return
		}
		target, err := url.Parse(cur.Addr)
		if err != nil {
			s.fail(w, r, s.Leader.NotLeaderError())
			return
		}
		p := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header.Set(forwardedHeader, "1")
			},
			// Progress of a deploy streams through as it comes.
			FlushInterval: -1,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				s.fail(w, r, gantry.Errorf(gantry.EUNAVAILABLE, "the leader %s at %s did not answer: %v; retry in a few seconds", cur.Holder, cur.Addr, err))
			},
		}
		p.ServeHTTP(w, r)
	})
}

// LeaderStatus is GET /v1/leader: the lease and whether this server holds it.
type LeaderStatus struct {
	Lease   *gantry.Lease `json:"lease,omitempty"`
	Leading bool          `json:"leading"`
}

func (s *Server) leader(w http.ResponseWriter, r *http.Request) {
	st := LeaderStatus{Leading: true}
	if s.Leader != nil {
		st = LeaderStatus{Lease: s.Leader.Current(), Leading: s.Leader.Leading()}
	}
	writeJSON(w, http.StatusOK, st)
}
