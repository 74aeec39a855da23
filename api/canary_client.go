package api

import (
	"context"
	"net/http"

	"github.com/gantry-dev/gantry"
)

// CanaryStatus reports the canary running on env.
func (c *Client) CanaryStatus(ctx context.Context, app, env string) (*gantry.CanaryReport, error) {
	var out gantry.CanaryReport
	if err := c.do(ctx, http.MethodGet, envPath(app, env)+"/canary", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CanarySteer promotes or aborts the canary running on env.
func (c *Client) CanarySteer(ctx context.Context, app, env string, promote bool) (*gantry.CanaryReport, error) {
	verb := "/canary/abort"
	if promote {
		verb = "/canary/promote"
	}
	var out gantry.CanaryReport
	if err := c.do(ctx, http.MethodPost, envPath(app, env)+verb, struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
