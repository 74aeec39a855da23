package api

import (
	"context"
	"net/http"

	"github.com/gantry-dev/gantry"
)

// Cancel stops the deployment that holds an environment and returns its
// record once it has ended.
func (c *Client) Cancel(ctx context.Context, app, env string) (*gantry.Deployment, error) {
	var out gantry.Deployment
	if err := c.do(ctx, http.MethodPost, envPath(app, env)+"/cancel", struct{}{}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
