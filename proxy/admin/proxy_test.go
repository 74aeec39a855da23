package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/proxy"
	"github.com/gantry-dev/gantry/proxy/admin"
)

// MustBackend starts an HTTP backend on loopback that answers name.
func MustBackend(tb testing.TB, name string) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, name)
	}))
	tb.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// get requests path through the router with the given Host.
func get(tb testing.TB, front, host string) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest("GET", front+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// realRouter starts a real proxy.Router behind a test server and an admin
// client on its socket; all are closed when the test ends.
func realRouter(t *testing.T) (front *httptest.Server, c *admin.Client, ctx context.Context) {
	t.Helper()
	r := proxy.New(proxy.Config{})
	t.Cleanup(func() { r.Close() })
	front = httptest.NewServer(r)
	t.Cleanup(front.Close)
	c = admin.NewClient(MustServeUnix(t, admin.Handler(r, "", nil)), "")
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return front, c, ctx
}

// TestRealRouter drives the real proxy.Router through the socket: what the
// API does must be what the data plane serves.
func TestRealRouter(t *testing.T) {
	front, c, ctx := realRouter(t)

	blue, green := MustBackend(t, "blue"), MustBackend(t, "green")
	route := gantry.Route{
		Name:          "shop/test",
		Hosts:         []string{"test.shop.localhost"},
		PreviewHosts:  []string{"preview.shop.localhost"},
		Health:        gantry.HealthCheck{Path: "/up", Interval: 50 * time.Millisecond, Timeout: time.Second},
		DeployTimeout: 10 * time.Second,
		DrainTimeout:  time.Second,
	}
	res, err := c.Deploy(ctx, route, []string{blue})
	if err != nil {
		t.Fatalf("Deploy blue: %v", err)
	}
	if len(res.To) != 1 || res.To[0] != blue {
		t.Errorf("Deploy result To: got %v, want [%s]", res.To, blue)
	}
	if code, body := get(t, front.URL, "test.shop.localhost"); code != 200 || body != "blue" {
		t.Errorf("after deploy: got %d %q, want 200 blue", code, body)
	}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(st) != 1 || st[0].Route.Name != "shop/test" || len(st[0].Active) != 1 || st[0].Active[0].Addr != blue || !st[0].Active[0].Healthy {
		t.Errorf("Status: got %+v, want shop/test active on healthy %s", st, blue)
	}

	if err := c.SetPreview(ctx, "shop/test", []string{green}); err != nil {
		t.Fatalf("SetPreview: %v", err)
	}
	if code, body := get(t, front.URL, "preview.shop.localhost"); code != 200 || body != "green" {
		t.Errorf("preview: got %d %q, want 200 green", code, body)
	}
	if _, err := c.Deploy(ctx, route, []string{green}); err != nil {
		t.Fatalf("Deploy green: %v", err)
	}
	if _, body := get(t, front.URL, "test.shop.localhost"); body != "green" {
		t.Errorf("after second deploy: got %q, want green", body)
	}
	if _, err := c.Rollback(ctx, "shop/test"); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if _, body := get(t, front.URL, "test.shop.localhost"); body != "blue" {
		t.Errorf("after rollback: got %q, want blue", body)
	}

	if err := c.Maintenance(ctx, "shop/test", true, "back soon"); err != nil {
		t.Fatalf("Maintenance: %v", err)
	}
	if code, body := get(t, front.URL, "test.shop.localhost"); code != 503 || !strings.Contains(body, "back soon") {
		t.Errorf("in maintenance: got %d %q, want 503 with the message", code, body)
	}
	if err := c.Maintenance(ctx, "shop/test", false, ""); err != nil {
		t.Fatalf("Maintenance off: %v", err)
	}
	if code, _ := get(t, front.URL, "test.shop.localhost"); code != 200 {
		t.Errorf("after maintenance: got %d, want 200", code)
	}

	// The router's own refusals keep their codes across the socket.
	deadRoute := route
	deadRoute.Name, deadRoute.Hosts, deadRoute.PreviewHosts = "shop/prod", []string{"shop.localhost"}, nil
	deadRoute.DeployTimeout = 300 * time.Millisecond
	deadRoute.Health.Path = "/up"
	refusals := []struct {
		name string
		call func() error
		want string
	}{
		{"unknown route", func() error { return c.Resume(ctx, "nope/none") }, gantry.ENOTFOUND},
		{"host taken", func() error {
			r2 := deadRoute
			r2.Hosts = []string{"test.shop.localhost"}
			_, err := c.Deploy(ctx, r2, []string{blue})
			return err
		}, gantry.ECONFLICT},
		{"bad target", func() error { _, err := c.Deploy(ctx, deadRoute, []string{"not-an-address"}); return err }, gantry.EINVALID},
		{"unhealthy target", func() error {
			_, err := c.Deploy(ctx, deadRoute, []string{closedAddr(t)})
			return err
		}, gantry.EUNAVAILABLE},
	}
	for _, tt := range refusals {
		if got := gantry.ErrorCode(tt.call()); got != tt.want {
			t.Errorf("%s: got code %q, want %q", tt.name, got, tt.want)
		}
	}

	if err := c.RemoveRoute(ctx, "shop/test"); err != nil {
		t.Fatalf("RemoveRoute: %v", err)
	}
	if code, _ := get(t, front.URL, "test.shop.localhost"); code != 404 {
		t.Errorf("after remove: got %d, want 404", code)
	}
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	return addr
}
