package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gantry-dev/gantry"
)

// DatabaseStatus returns an environment's migration ledger.
func (c *Client) DatabaseStatus(ctx context.Context, app, env string) (*gantry.DatabaseStatus, error) {
	var out gantry.DatabaseStatus
	return &out, c.do(ctx, http.MethodGet, envPath(app, env)+"/db", nil, &out)
}

// Contract completes an environment's active migration.
func (c *Client) Contract(ctx context.Context, app, env string, force bool) (*gantry.MigrationRecord, error) {
	var out gantry.MigrationRecord
	return &out, c.do(ctx, http.MethodPost, envPath(app, env)+"/db/contract?force="+strconv.FormatBool(force), nil, &out)
}
