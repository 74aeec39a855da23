package api

import (
	"context"
	"net/http"
	"net/url"
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

// DatabaseRollback rolls back an environment's active migration; with
// force, across a completed contract (an admin's call: it loses writes).
func (c *Client) DatabaseRollback(ctx context.Context, app, env string, force bool) (*gantry.MigrationRecord, error) {
	path := envPath(app, env) + "/db/rollback"
	if force {
		path += "/force"
	}
	var out gantry.MigrationRecord
	return &out, c.do(ctx, http.MethodPost, path, nil, &out)
}

// Snapshots lists an environment's database snapshots, newest first.
func (c *Client) Snapshots(ctx context.Context, app, env string) ([]*gantry.Snapshot, error) {
	var out []*gantry.Snapshot
	return out, c.do(ctx, http.MethodGet, envPath(app, env)+"/db/snapshots", nil, &out)
}

// Snapshot takes a snapshot of an environment's database now.
func (c *Client) Snapshot(ctx context.Context, app, env, reason string) (*gantry.Snapshot, error) {
	var out gantry.Snapshot
	return &out, c.do(ctx, http.MethodPost, envPath(app, env)+"/db/snapshots", SnapshotRequest{Reason: reason}, &out)
}

// Restore replaces an environment's database with a snapshot.
func (c *Client) Restore(ctx context.Context, app, env, name string) (*gantry.MigrationRecord, error) {
	var out gantry.MigrationRecord
	return &out, c.do(ctx, http.MethodPost, envPath(app, env)+"/db/snapshots/"+url.PathEscape(name)+"/restore", nil, &out)
}
