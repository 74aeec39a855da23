package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
)

// RouteWatchWait is how long one watch of the route table waits on the
// server; a router that hears nothing for a little longer than this takes
// the connection as lost (a partition sends no reset) and connects again.
const RouteWatchWait = 10 * time.Second

// WatchRoutes returns the route table once its version is past after, or
// as it is when the server's wait (RouteWatchWait) ends first.
func (c *Client) WatchRoutes(ctx context.Context, after int64) (*gantry.RouteTable, error) {
	ctx, cancel := context.WithTimeout(ctx, RouteWatchWait+5*time.Second)
	defer cancel()
	var t gantry.RouteTable
	path := "/v1/routes?after=" + strconv.FormatInt(after, 10) + "&wait=" + RouteWatchWait.String()
	if err := c.do(ctx, http.MethodGet, path, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ReportRouter tells the control plane what a following router serves.
func (c *Client) ReportRouter(ctx context.Context, r *gantry.RouterReport) error {
	return c.do(ctx, http.MethodPut, "/v1/routers/"+url.PathEscape(r.Name), r, nil)
}

// ForgetRouter forgets a router gone for good: switches stop waiting for it.
func (c *Client) ForgetRouter(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/routers/"+url.PathEscape(name), nil, nil)
}

// Routers returns the route table's version and every router's report.
func (c *Client) Routers(ctx context.Context) (*RoutersStatus, error) {
	var out RoutersStatus
	if err := c.do(ctx, http.MethodGet, "/v1/routers", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Leader returns the lease and whether the server asked holds it.
func (c *Client) Leader(ctx context.Context) (*LeaderStatus, error) {
	var out LeaderStatus
	if err := c.do(ctx, http.MethodGet, "/v1/leader", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
