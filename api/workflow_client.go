package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gantry-dev/gantry"
)

// Clone creates environment req.Dst as a copy of req.Src.
func (c *Client) Clone(ctx context.Context, req gantry.CloneRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	var out gantry.Deployment
	err := c.stream(ctx, envPath(req.App, req.Src)+"/clone", CloneRequest{Dst: req.Dst, WithData: req.WithData, PostCopy: req.PostCopy}, &out, progress)
	return orNil(&out, err)
}

// Rename renames req.Old to req.New.
func (c *Client) Rename(ctx context.Context, req gantry.RenameRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	var out gantry.Deployment
	err := c.stream(ctx, envPath(req.App, req.Old)+"/rename", RenameRequest{New: req.New, DisplaceTo: req.DisplaceTo}, &out, progress)
	return orNil(&out, err)
}

// DeleteEnvironment deletes an environment, keeping its history.
func (c *Client) DeleteEnvironment(ctx context.Context, req gantry.DeleteEnvironmentRequest) error {
	return c.do(ctx, http.MethodDelete, envPath(req.App, req.Env)+"?force="+strconv.FormatBool(req.Force)+"&purge="+strconv.FormatBool(req.Purge)+"&keep_data="+strconv.FormatBool(req.KeepData), nil, nil)
}

// Approve approves a release for an environment.
func (c *Client) Approve(ctx context.Context, req gantry.ApproveRequest) (*gantry.Approval, error) {
	var out gantry.Approval
	return &out, c.do(ctx, http.MethodPost, envPath(req.App, req.Env)+"/approvals", ApproveBody{Release: req.Release, Comment: req.Comment}, &out)
}

// ListApprovals lists the approvals of a release for an environment.
func (c *Client) ListApprovals(ctx context.Context, app, env, release string) ([]*gantry.Approval, error) {
	var out []*gantry.Approval
	return out, c.do(ctx, http.MethodGet, envPath(app, env)+"/approvals?release="+url.QueryEscape(release), nil, &out)
}
