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

// Continue resumes the paused rollout of env, or with abort puts its
// candidate back.
func (c *Client) Continue(ctx context.Context, app, env, actor string, abort bool, progress gantry.Progress) (*gantry.Deployment, error) {
	var out gantry.Deployment
	err := c.stream(ctx, envPath(app, env)+"/continue", ContinueRequest{Abort: abort}, &out, progress)
	return orNil(&out, err)
}
