package api

import (
	"context"

	"github.com/gantry-dev/gantry"
)

// DeployOrdered deploys req with the options of an ordered rollout:
// pauseAfter (nil: no pause) and only (empty: every service).
func (c *Client) DeployOrdered(ctx context.Context, req gantry.DeployRequest, pauseAfter *int, only string, progress gantry.Progress) (*gantry.Deployment, error) {
	var out gantry.Deployment
	err := c.stream(ctx, envPath(req.App, req.Env)+"/rollout", RolloutRequest{DeployRequest: req, PauseAfter: pauseAfter, Only: only}, &out, progress)
	return orNil(&out, err)
}

// Continue resumes the paused rollout of req.Env, or with req.Abort puts
// its candidate back. The actor is the caller's credential's.
func (c *Client) Continue(ctx context.Context, req gantry.ContinueRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	var out gantry.Deployment
	err := c.stream(ctx, envPath(req.App, req.Env)+"/continue", ContinueRequest{Abort: req.Abort, BreakGlass: req.BreakGlass}, &out, progress)
	return orNil(&out, err)
}
