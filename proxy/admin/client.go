package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/gantry-dev/gantry"
)

var _ gantry.Router = (*Client)(nil)

// Client is a gantry.Router backed by a `gantry proxy` reached over its
// admin API. It has no timeout of its own: a deploy waits for a health
// round and a drain, which the route bounds; callers bound it with ctx.
type Client struct {
	addr  string
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the admin API at addr: a unix socket path,
// or an http://host:port URL (then token, if not empty, is sent as a bearer
// token).
func NewClient(addr, token string) *Client {
	c := &Client{addr: addr, token: token}
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		c.base = strings.TrimRight(addr, "/")
		c.http = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}
		return c
	}
	c.base = "http://gantry-proxy"
	var d net.Dialer
	c.http = &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", addr)
		},
		MaxIdleConnsPerHost: 4,
	}}
	return c
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

func (c *Client) Deploy(ctx context.Context, route gantry.Route, targets []string) (*gantry.SwitchResult, error) {
	var res gantry.SwitchResult
	if err := c.call(ctx, http.MethodPost, PathDeploy, DeployRequest{Route: route, Targets: targets}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (c *Client) Rollback(ctx context.Context, name string) (*gantry.SwitchResult, error) {
	var res gantry.SwitchResult
	if err := c.call(ctx, http.MethodPost, PathRollback, NameRequest{Name: name}, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

func (c *Client) SetPreview(ctx context.Context, name string, targets []string) error {
	return c.call(ctx, http.MethodPost, PathPreview, PreviewRequest{Name: name, Targets: targets}, nil)
}

func (c *Client) Pause(ctx context.Context, name string, writesOnly bool) error {
	return c.call(ctx, http.MethodPost, PathPause, PauseRequest{Name: name, WritesOnly: writesOnly}, nil)
}

func (c *Client) Resume(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodPost, PathResume, NameRequest{Name: name}, nil)
}

func (c *Client) Maintenance(ctx context.Context, name string, on bool, message string) error {
	return c.call(ctx, http.MethodPost, PathMaintenance, MaintenanceRequest{Name: name, On: on, Message: message}, nil)
}

func (c *Client) RemoveRoute(ctx context.Context, name string) error {
	return c.call(ctx, http.MethodPost, PathRemove, NameRequest{Name: name}, nil)
}

func (c *Client) Status(ctx context.Context) ([]gantry.RouteStatus, error) {
	var res StatusResponse
	if err := c.call(ctx, http.MethodGet, PathStatus, nil, &res); err != nil {
		return nil, err
	}
	return res.Routes, nil
}

// call does one request. Errors the API answers become *gantry.Error with
// the API's code; a proxy that cannot be reached is EUNAVAILABLE, so the
// control plane can tell "proxy down" from "proxy refused".
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("proxy admin request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return gantry.Errorf(gantry.EUNAVAILABLE, "proxy admin at %s is not reachable: %v", c.addr, unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return gantry.Errorf(gantry.EUNAVAILABLE, "proxy admin at %s: reading the answer to %s: %v", c.addr, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorResponse
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			return &gantry.Error{Code: e.Code, Message: e.Error}
		}
		return fmt.Errorf("proxy admin at %s: %s %s: %s: %.200q", c.addr, method, path, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("proxy admin at %s: decode answer to %s: %w", c.addr, path, err)
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
