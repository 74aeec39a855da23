package api

import (
	"context"
	"net/http"

	"github.com/gantry-dev/gantry"
)

// RolloutService runs ordered rollouts of a stack: a deploy that pauses
// after an order group or redeploys one service, and the continuation of
// a paused one (package deploy's orchestrator).
type RolloutService interface {
	DeployOrdered(ctx context.Context, req gantry.DeployRequest, pauseAfter *int, only string, progress gantry.Progress) (*gantry.Deployment, error)
	Continue(ctx context.Context, req gantry.ContinueRequest, progress gantry.Progress) (*gantry.Deployment, error)
}

// RolloutRequest is the body of an ordered deploy: a deploy request and
// the rollout's options.
type RolloutRequest struct {
	gantry.DeployRequest
	// PauseAfter pauses the deployment once this order group is healthy.
	PauseAfter *int `json:"pause_after,omitempty"`
	// Only redeploys this one service.
	Only string `json:"only,omitempty"`
}

// ContinueRequest is the body of a continue.
type ContinueRequest struct {
	// Abort puts the paused candidate's groups back instead of going on.
	Abort bool `json:"abort,omitempty"`
	// BreakGlass is the recorded reason to go on during a freeze window.
	BreakGlass string `json:"break_glass,omitempty"`
}

func (s *Server) rollouts() (RolloutService, error) {
	if s.Rollouts == nil {
		return nil, gantry.Errorf(gantry.EINVALID, "this server does not run ordered rollouts")
	}
	return s.Rollouts, nil
}

func (s *Server) rollout(w http.ResponseWriter, r *http.Request) {
	var body RolloutRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	rs, err := s.rollouts()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req := body.DeployRequest
	req.App, req.Env, req.Actor = r.PathValue("app"), r.PathValue("env"), actor(r)
	noteRelease(r, req.Release)
	s.stream(w, r, func(ctx context.Context, p gantry.Progress) (any, error) {
		return deploymentResult(rs.DeployOrdered(ctx, req, body.PauseAfter, body.Only, p))
	})
}

func (s *Server) continueRollout(w http.ResponseWriter, r *http.Request) {
	var body ContinueRequest
	if err := decode(r, &body); err != nil {
		s.fail(w, r, err)
		return
	}
	rs, err := s.rollouts()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	app, env, who := r.PathValue("app"), r.PathValue("env"), actor(r)
	s.stream(w, r, func(ctx context.Context, p gantry.Progress) (any, error) {
		return deploymentResult(rs.Continue(ctx, gantry.ContinueRequest{App: app, Env: env, Actor: who, Abort: body.Abort, BreakGlass: body.BreakGlass}, p))
	})
}
