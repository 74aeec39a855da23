package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/proxy/admin"
)

// recorder is a gantry.Router that records its calls and fails with err.
// It checks the wiring of the API; the real router is tested in
// proxy_test.go.
type recorder struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (r *recorder) record(format string, args ...any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
	return r.err
}

func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *recorder) Deploy(_ context.Context, route gantry.Route, targets []string) (*gantry.SwitchResult, error) {
	if err := r.record("deploy %s %v %v %s", route.Name, route.Hosts, targets, route.DeployTimeout); err != nil {
		return nil, err
	}
	return &gantry.SwitchResult{Route: route.Name, To: targets, Drained: 3}, nil
}

func (r *recorder) Rollback(_ context.Context, name string) (*gantry.SwitchResult, error) {
	if err := r.record("rollback %s", name); err != nil {
		return nil, err
	}
	return &gantry.SwitchResult{Route: name, To: []string{"127.0.0.1:1"}}, nil
}

func (r *recorder) SetPreview(_ context.Context, name string, targets []string) error {
	return r.record("preview %s %v", name, targets)
}

func (r *recorder) Pause(_ context.Context, name string, writesOnly bool) error {
	return r.record("pause %s %v", name, writesOnly)
}

func (r *recorder) Resume(_ context.Context, name string) error {
	return r.record("resume %s", name)
}

func (r *recorder) Maintenance(_ context.Context, name string, on bool, message string) error {
	return r.record("maintenance %s %v %q", name, on, message)
}

func (r *recorder) RemoveRoute(_ context.Context, name string) error {
	return r.record("remove %s", name)
}

func (r *recorder) Status(context.Context) ([]gantry.RouteStatus, error) {
	if err := r.record("status"); err != nil {
		return nil, err
	}
	return []gantry.RouteStatus{{Route: gantry.Route{Name: "shop/test"}, Switches: 2}}, nil
}

// MustServeUnix serves h on a unix socket in a temporary directory and
// returns the socket's path.
func MustServeUnix(tb testing.TB, h http.Handler) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "admin.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	return path
}

// MustServeTCP serves h on loopback and returns its base URL.
func MustServeTCP(tb testing.TB, h http.Handler) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

func TestClientCallsRouter(t *testing.T) {
	rec := &recorder{}
	c := admin.NewClient(MustServeUnix(t, admin.Handler(rec, "", nil)), "")
	defer c.Close()
	ctx := context.Background()
	route := gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"}, DeployTimeout: 7 * time.Second}

	res, err := c.Deploy(ctx, route, []string{"127.0.0.1:9001", "127.0.0.1:9002"})
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if want := (&gantry.SwitchResult{Route: "shop/test", To: []string{"127.0.0.1:9001", "127.0.0.1:9002"}, Drained: 3}); !reflect.DeepEqual(res, want) {
		t.Errorf("Deploy result: got %+v, want %+v", res, want)
	}
	if res, err := c.Rollback(ctx, "shop/test"); err != nil || res.Route != "shop/test" {
		t.Errorf("Rollback: got %+v, %v", res, err)
	}
	steps := []struct {
		name string
		call func() error
	}{
		{"preview", func() error { return c.SetPreview(ctx, "shop/test", []string{"127.0.0.1:9003"}) }},
		{"clear preview", func() error { return c.SetPreview(ctx, "shop/test", nil) }},
		{"pause", func() error { return c.Pause(ctx, "shop/test", true) }},
		{"resume", func() error { return c.Resume(ctx, "shop/test") }},
		{"maintenance on", func() error { return c.Maintenance(ctx, "shop/test", true, "back at 5") }},
		{"maintenance off", func() error { return c.Maintenance(ctx, "shop/test", false, "") }},
		{"remove", func() error { return c.RemoveRoute(ctx, "shop/test") }},
	}
	for _, s := range steps {
		if err := s.call(); err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(st) != 1 || st[0].Route.Name != "shop/test" || st[0].Switches != 2 {
		t.Errorf("Status: got %+v, want one route shop/test with 2 switches", st)
	}
	want := []string{
		"deploy shop/test [test.shop.localhost] [127.0.0.1:9001 127.0.0.1:9002] 7s",
		"rollback shop/test",
		"preview shop/test [127.0.0.1:9003]",
		"preview shop/test []",
		"pause shop/test true",
		"resume shop/test",
		`maintenance shop/test true "back at 5"`,
		`maintenance shop/test false ""`,
		"remove shop/test",
		"status",
	}
	if got := rec.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n got %q\nwant %q", got, want)
	}
}

// TestErrorCodes checks that every code crosses the API intact, with the
// HTTP status the API documents, and that internal details stay inside.
func TestErrorCodes(t *testing.T) {
	tests := []struct {
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{gantry.Errorf(gantry.EINVALID, "bad host %q", "x y"), 400, gantry.EINVALID, `bad host "x y"`},
		{gantry.Errorf(gantry.ENOTFOUND, "no route %q", "a/b"), 404, gantry.ENOTFOUND, `no route "a/b"`},
		{gantry.Errorf(gantry.ECONFLICT, "host taken"), 409, gantry.ECONFLICT, "host taken"},
		{gantry.Errorf(gantry.EUNAVAILABLE, "127.0.0.1:9 not healthy"), 503, gantry.EUNAVAILABLE, "127.0.0.1:9 not healthy"},
		{gantry.Errorf(gantry.EFORBIDDEN, "no"), 403, gantry.EFORBIDDEN, "no"},
		{gantry.Errorf(gantry.EUNAUTHORIZED, "who"), 401, gantry.EUNAUTHORIZED, "who"},
		{fmt.Errorf("wrapped: %w", gantry.Errorf(gantry.ECONFLICT, "inner")), 409, gantry.ECONFLICT, "inner"},
		{errors.New("open /secret/path: permission denied"), 500, gantry.EINTERNAL, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.wantCode, func(t *testing.T) {
			var logs bytes.Buffer
			rec := &recorder{err: tt.err}
			h := admin.Handler(rec, "", slog.New(slog.NewJSONHandler(&logs, nil)))
			path := MustServeUnix(t, h)

			// On the wire.
			hc := unixHTTP(path)
			resp, err := hc.Post("http://x"+admin.PathResume, "application/json", strings.NewReader(`{"name":"a/b"}`))
			if err != nil {
				t.Fatal(err)
			}
			var body admin.ErrorResponse
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if body.Code != tt.wantCode || body.Error != tt.wantMsg {
				t.Errorf("body: got %+v, want code %q error %q", body, tt.wantCode, tt.wantMsg)
			}
			if tt.wantCode == gantry.EINTERNAL && !strings.Contains(logs.String(), "/secret/path") {
				t.Errorf("internal error detail not logged: %s", logs.String())
			}

			// Through the client.
			err = admin.NewClient(path, "").Resume(context.Background(), "a/b")
			var ge *gantry.Error
			if !errors.As(err, &ge) {
				t.Fatalf("client error: got %T %v, want *gantry.Error", err, err)
			}
			if ge.Code != tt.wantCode || ge.Message != tt.wantMsg {
				t.Errorf("client error: got %+v, want code %q message %q", ge, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func unixHTTP(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

func TestBadRequests(t *testing.T) {
	rec := &recorder{}
	hc := unixHTTP(MustServeUnix(t, admin.Handler(rec, "", nil)))
	tests := []struct {
		name, method, path, ctype, body string
		wantStatus                      int
		wantCode, wantIn                string
	}{
		{"unknown field", "POST", admin.PathPause, "application/json", `{"name":"a/b","writes_only":true,"typo":1}`, 400, gantry.EINVALID, `unknown field "typo"`},
		{"trailing data", "POST", admin.PathResume, "application/json", `{"name":"a/b"} {}`, 400, gantry.EINVALID, "after the JSON object"},
		{"not json", "POST", admin.PathResume, "application/json", `name=a`, 400, gantry.EINVALID, "bad request body"},
		{"wrong type", "POST", admin.PathPause, "application/json", `{"name":"a/b","writes_only":"yes"}`, 400, gantry.EINVALID, "bad request body"},
		{"empty body", "POST", admin.PathRemove, "application/json", ``, 400, gantry.EINVALID, "bad request body"},
		{"no name", "POST", admin.PathRollback, "application/json", `{}`, 400, gantry.EINVALID, `"name" is required`},
		{"form content", "POST", admin.PathResume, "application/x-www-form-urlencoded", `{"name":"a/b"}`, 400, gantry.EINVALID, "content type"},
		{"too big", "POST", admin.PathDeploy, "application/json", `{"route":{"name":"` + strings.Repeat("x", admin.MaxRequestBytes) + `"}}`, 400, gantry.EINVALID, "larger than"},
		{"unknown path", "GET", "/v1/nope", "", ``, 404, gantry.ENOTFOUND, "no endpoint GET /v1/nope"},
		{"wrong method", "GET", admin.PathDeploy, "", ``, 404, gantry.ENOTFOUND, "no endpoint GET /v1/deploy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://x"+tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body admin.ErrorResponse
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("error body is not JSON: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || body.Code != tt.wantCode || !strings.Contains(body.Error, tt.wantIn) {
				t.Errorf("got %d %+v, want %d code %q error containing %q", resp.StatusCode, body, tt.wantStatus, tt.wantCode, tt.wantIn)
			}
		})
	}
	if calls := rec.Calls(); len(calls) != 0 {
		t.Errorf("bad requests reached the router: %q", calls)
	}
}

func TestTokenOverTCP(t *testing.T) {
	rec := &recorder{}
	base := MustServeTCP(t, admin.Handler(rec, "s3cret", nil))
	ctx := context.Background()
	for _, token := range []string{"", "wrong", "s3cret-longer"} {
		_, err := admin.NewClient(base, token).Status(ctx)
		if got := gantry.ErrorCode(err); got != gantry.EUNAUTHORIZED {
			t.Errorf("token %q: got code %q (%v), want %q", token, got, err, gantry.EUNAUTHORIZED)
		}
	}
	if calls := rec.Calls(); len(calls) != 0 {
		t.Errorf("unauthenticated requests reached the router: %q", calls)
	}
	if _, err := admin.NewClient(base+"/", "s3cret").Status(ctx); err != nil {
		t.Errorf("right token: %v", err)
	}
	resp, err := http.Get(base + admin.PathStatus)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
	}
}

func TestClientUnreachable(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "none.sock")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String()
	l.Close()
	for _, addr := range []string{missing, closedURL} {
		_, err := admin.NewClient(addr, "").Status(ctx)
		if got := gantry.ErrorCode(err); got != gantry.EUNAVAILABLE {
			t.Errorf("%s: got code %q (%v), want %q", addr, got, err, gantry.EUNAVAILABLE)
		}
		if !strings.Contains(gantry.ErrorMessage(err), addr) {
			t.Errorf("%s: message %q does not name the address", addr, gantry.ErrorMessage(err))
		}
	}
	// A cancelled context is the caller's doing, not the proxy's.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := admin.NewClient(missing, "").Status(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}
