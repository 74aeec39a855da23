package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Client talks to a Gantry server's API.
type Client struct {
	// URL is the server's base URL; requests over a unix socket use a
	// placeholder host.
	URL string
	// Token is sent as a bearer token; over the server's unix socket the
	// server's own user needs none.
	Token string
	HTTP  *http.Client
	// Server is what the client was given, for messages.
	Server string
}

// NewClient returns a client of the server at baseURL: http://host:port, or
// unix:///path/to/gantry.sock for the server's local socket. The server
// decides who the client is from token (or the socket's peer); a name the
// client states is not trusted.
func NewClient(baseURL, token string) *Client {
	c := &Client{URL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{}, Server: baseURL}
	if path, ok := strings.CutPrefix(baseURL, "unix://"); ok {
		c.URL = "http://gantry.sock"
		c.HTTP.Transport = &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}
	}
	return c
}

func (c *Client) newRequest(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return gantry.Errorf(gantry.EUNAVAILABLE, "cannot reach the gantry server at %s: %v (is `gantry server` running? set --server or GANTRY_SERVER)", c.Server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode response of %s %s: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
		return gantry.Errorf(gantry.EINTERNAL, "server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return &gantry.Error{Code: eb.Code, Message: eb.Error}
}

// stream posts body and calls progress for each event; it decodes the
// final result into out and returns the final error.
func (c *Client) stream(ctx context.Context, path string, body, out any, progress gantry.Progress) error {
	req, err := c.newRequest(ctx, http.MethodPost, path, body)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return gantry.Errorf(gantry.EUNAVAILABLE, "cannot reach the gantry server at %s: %v", c.Server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var line struct {
			Event  *gantry.Event   `json:"event"`
			Result json.RawMessage `json:"result"`
			Error  *ErrorBody      `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("decode stream of %s: %w", path, err)
		}
		if line.Event != nil {
			if progress != nil {
				progress(*line.Event)
			}
			continue
		}
		if len(line.Result) > 0 && out != nil && string(line.Result) != "null" {
			if err := json.Unmarshal(line.Result, out); err != nil {
				return fmt.Errorf("decode result of %s: %w", path, err)
			}
		}
		if line.Error != nil {
			return &gantry.Error{Code: line.Error.Code, Message: line.Error.Error}
		}
		return nil
	}
	if err := sc.Err(); err != nil {
		return gantry.Errorf(gantry.EUNAVAILABLE, "the server closed the stream of %s: %v", path, err)
	}
	return gantry.Errorf(gantry.EUNAVAILABLE, "the server closed the stream of %s before the result", path)
}

func appPath(app string) string { return "/v1/apps/" + url.PathEscape(app) }

func envPath(app, env string) string {
	return appPath(app) + "/environments/" + url.PathEscape(env)
}

// Health checks that the server answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v1/health", nil, nil)
}

// ServerURL returns the API's address as the server reports it ("" when
// it reports none): where a client on the network, or a forge, reaches it.
func (c *Client) ServerURL(ctx context.Context) (string, error) {
	var h struct {
		URL string `json:"url"`
	}
	return h.URL, c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
}

// ListApps lists registered apps.
func (c *Client) ListApps(ctx context.Context) ([]*gantry.App, error) {
	var out []*gantry.App
	return out, c.do(ctx, http.MethodGet, "/v1/apps", nil, &out)
}

// CreateApp registers an app.
func (c *Client) CreateApp(ctx context.Context, name, repo string) (*gantry.App, error) {
	var out gantry.App
	return &out, c.do(ctx, http.MethodPost, "/v1/apps", CreateAppRequest{Name: name, Repo: repo}, &out)
}

// BuildRelease builds (or reuses) the release of a ref.
func (c *Client) BuildRelease(ctx context.Context, req gantry.BuildRequest, progress gantry.Progress) (*gantry.Release, error) {
	var out gantry.Release
	err := c.stream(ctx, appPath(req.App)+"/releases", req, &out, progress)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// ListReleases lists an app's releases, newest first.
func (c *Client) ListReleases(ctx context.Context, app string, limit int) ([]*gantry.Release, error) {
	var out []*gantry.Release
	return out, c.do(ctx, http.MethodGet, appPath(app)+"/releases?limit="+strconv.Itoa(limit), nil, &out)
}

// FindRelease finds a release by id or version.
func (c *Client) FindRelease(ctx context.Context, app, id string) (*gantry.Release, error) {
	var out gantry.Release
	return &out, c.do(ctx, http.MethodGet, appPath(app)+"/releases/"+url.PathEscape(id), nil, &out)
}

// ListEnvironments returns the status of an app's environments.
func (c *Client) ListEnvironments(ctx context.Context, app string) ([]EnvironmentStatus, error) {
	var out []EnvironmentStatus
	return out, c.do(ctx, http.MethodGet, appPath(app)+"/environments", nil, &out)
}

// Environment returns one environment's status.
func (c *Client) Environment(ctx context.Context, app, env string) (*EnvironmentStatus, error) {
	var out EnvironmentStatus
	return &out, c.do(ctx, http.MethodGet, envPath(app, env), nil, &out)
}

// Deploy deploys a release; the deployment record comes back even when it failed.
func (c *Client) Deploy(ctx context.Context, req gantry.DeployRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	var out gantry.Deployment
	err := c.stream(ctx, envPath(req.App, req.Env)+"/deploy", req, &out, progress)
	return orNil(&out, err)
}

// Promote promotes the release of req.From to req.To.
func (c *Client) Promote(ctx context.Context, req gantry.PromoteRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	var out gantry.Deployment
	err := c.stream(ctx, envPath(req.App, req.To)+"/promote", req, &out, progress)
	return orNil(&out, err)
}

// Rollback rolls an environment back.
func (c *Client) Rollback(ctx context.Context, req gantry.RollbackRequest, progress gantry.Progress) (*gantry.Deployment, error) {
	var out gantry.Deployment
	err := c.stream(ctx, envPath(req.App, req.Env)+"/rollback", req, &out, progress)
	return orNil(&out, err)
}

func orNil(d *gantry.Deployment, err error) (*gantry.Deployment, error) {
	if d.ID == 0 {
		return nil, err
	}
	return d, err
}

// ListDeployments lists an app's deployments, newest first.
func (c *Client) ListDeployments(ctx context.Context, app, env string, limit int, before int64) ([]*gantry.Deployment, error) {
	q := url.Values{"env": {env}, "limit": {strconv.Itoa(limit)}}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	var out []*gantry.Deployment
	return out, c.do(ctx, http.MethodGet, appPath(app)+"/deployments?"+q.Encode(), nil, &out)
}

// FindDeployment returns a deployment with its journal.
func (c *Client) FindDeployment(ctx context.Context, app string, id int64) (*gantry.Deployment, error) {
	var out gantry.Deployment
	return &out, c.do(ctx, http.MethodGet, appPath(app)+"/deployments/"+strconv.FormatInt(id, 10), nil, &out)
}

// Lock locks an environment by hand.
func (c *Client) Lock(ctx context.Context, app, env, reason, ttl string) (*gantry.Lock, error) {
	var out gantry.Lock
	return &out, c.do(ctx, http.MethodPost, envPath(app, env)+"/lock", LockRequest{Reason: reason, TTL: ttl}, &out)
}

// Unlock releases an environment's lock.
func (c *Client) Unlock(ctx context.Context, app, env string, force bool) error {
	return c.do(ctx, http.MethodDelete, envPath(app, env)+"/lock?force="+strconv.FormatBool(force), nil, nil)
}

// Diff compares two environments.
func (c *Client) Diff(ctx context.Context, app, a, b string) (*Diff, error) {
	var out Diff
	q := url.Values{"a": {a}, "b": {b}}
	return &out, c.do(ctx, http.MethodGet, appPath(app)+"/diff?"+q.Encode(), nil, &out)
}

// Logs copies an environment's logs to w until they end (or ctx, when following).
func (c *Client) Logs(ctx context.Context, app, env, service string, tail int, follow bool, w io.Writer) error {
	q := url.Values{"service": {service}, "tail": {strconv.Itoa(tail)}, "follow": {strconv.FormatBool(follow)}}
	req, err := c.newRequest(ctx, http.MethodGet, envPath(app, env)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return gantry.Errorf(gantry.EUNAVAILABLE, "cannot reach the gantry server at %s: %v", c.Server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return decodeError(resp)
	}
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
