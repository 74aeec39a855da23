package api

import (
	"context"
	"net/http"

	"github.com/gantry-dev/gantry"
)

// CanaryService reads and steers the canary running on an environment
// (package deploy's orchestrator).
type CanaryService interface {
	CanaryStatus(ctx context.Context, app, env string) (*gantry.CanaryReport, error)
	// CanarySteer promotes (skips the remaining steps and switches) or
	// aborts (traffic back on the stable slot) the running canary.
	CanarySteer(ctx context.Context, app, env, actor string, promote bool) (*gantry.CanaryReport, error)
}

func (s *Server) canaryRoutes() []route {
	return []route{
		{"GET /v1/apps/{app}/environments/{env}/canary", PermRead, s.canaryStatus, nil},
		{"POST /v1/apps/{app}/environments/{env}/canary/promote", PermDeploy, s.canarySteer(true), nil},
		{"POST /v1/apps/{app}/environments/{env}/canary/abort", PermDeploy, s.canarySteer(false), nil},
	}
}

func (s *Server) canaries() (CanaryService, error) {
	if s.Canaries == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "this server does not run canaries")
	}
	return s.Canaries, nil
}

func (s *Server) canaryStatus(w http.ResponseWriter, r *http.Request) {
	cs, err := s.canaries()
	if err == nil {
		var rep *gantry.CanaryReport
		if rep, err = cs.CanaryStatus(r.Context(), r.PathValue("app"), r.PathValue("env")); err == nil {
			writeJSON(w, http.StatusOK, rep)
			return
		}
	}
	s.fail(w, r, err)
}

func (s *Server) canarySteer(promote bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cs, err := s.canaries()
		if err == nil {
			var rep *gantry.CanaryReport
			if rep, err = cs.CanarySteer(r.Context(), r.PathValue("app"), r.PathValue("env"), actor(r), promote); err == nil {
				writeJSON(w, http.StatusOK, rep)
				return
			}
		}
		s.fail(w, r, err)
	}
}
